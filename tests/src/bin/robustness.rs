//! A robustness campaign: `robustness [RUNS] [FIRST_SEED] [SECONDS]` runs RUNS randomized
//! runs (seeds FIRST_SEED, FIRST_SEED+1, ...), each a random cluster size, fault mix and
//! workload for SECONDS of faults, and prints one line per run with the seed, the faults,
//! the operations and each checker's verdict. A run that fails keeps its history and the
//! members' logs in ROBUSTNESS_OUT (default: robustness-failures/) as seed-<seed>.txt;
//! `robustness 1 <seed>` replays it. ROBUSTNESS_FAULTS (comma-separated names, e.g.
//! `kill-leader,full-disk`) limits the faults drawn from; the names are printed with
//! `robustness --faults`. Exits 1 if any run failed.

use etcdrs_tests::robustness::campaign::{run, Config, FaultKind};
use std::time::Duration;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--faults") {
        for k in FaultKind::ALL {
            println!("{}", k.name());
        }
        return;
    }
    let allowed: Vec<FaultKind> = match std::env::var("ROBUSTNESS_FAULTS") {
        Ok(names) => names
            .split(',')
            .map(|n| FaultKind::named(n.trim()).unwrap_or_else(|| panic!("no fault named {n}")))
            .collect(),
        Err(_) => FaultKind::ALL.to_vec(),
    };
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("RUNS FIRST_SEED SECONDS are numbers"))
        .collect();
    let runs = args.first().copied().unwrap_or(10);
    let first = args.get(1).copied().unwrap_or(1);
    let seconds = args.get(2).copied().unwrap_or(10);
    let out = std::path::PathBuf::from(
        std::env::var("ROBUSTNESS_OUT").unwrap_or_else(|_| "robustness-failures".into()),
    );
    let (mut failed, mut ops, mut faults) = (0, 0, 0);
    for seed in first..first + runs {
        let cfg = Config::random(seed, Duration::from_secs(seconds), &allowed);
        let report = run(seed, &cfg);
        println!("{}", report.summary());
        ops += report.ops;
        faults += report.faults.len();
        if !report.passed() {
            failed += 1;
            std::fs::create_dir_all(&out).expect("failure dir");
            let path = out.join(format!("seed-{seed}.txt"));
            let mut text = format!("{}\n", report.summary());
            for v in &report.verdicts {
                if let Some(why) = &v.violation {
                    text.push_str(&format!("{}: {why}\n", v.check));
                }
            }
            text.push_str(&format!("faults:\n  {}\n", report.faults.join("\n  ")));
            text.push_str(&report.history);
            std::fs::write(&path, text).expect("write the failure");
            println!("  FAILED: kept in {}", path.display());
        }
    }
    println!("{runs} runs, {faults} faults, {ops} operations checked, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}
