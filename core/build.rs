//! Generates etcd's v3 messages and gRPC services from core/proto with protox (no protoc),
//! and their JSON mapping (pbjson) for the gateway, as etcd's grpc-gateway spells it: proto
//! field names, defaults left out, unknown fields ignored.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/mvccpb/kv.proto",
        "proto/authpb/auth.proto",
        "proto/etcdserverpb/rpc.proto",
        "proto/etcdrs/raft.proto",
        "proto/v3lockpb/v3lock.proto",
        "proto/v3electionpb/v3election.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let descriptors = fds.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_transport(false)
        // Methods not served yet answer UNIMPLEMENTED, as tonic does for unknown methods.
        .generate_default_stubs(true)
        .bytes(".")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[
            ".mvccpb",
            ".authpb",
            ".etcdserverpb",
            ".v3lockpb",
            ".v3electionpb",
        ])?;
    Ok(())
}
