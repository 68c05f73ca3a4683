//! Key paths as etcd treats them: Go's `path.Clean(path.Join("/", p))`.

/// Clean a key path: rooted, no duplicate slashes, `.` and `..` resolved (never above the
/// root), no trailing slash.
pub fn clean(p: &str) -> String {
    // Most paths arrive clean (a request's key, then the store path made from it).
    if is_clean(p) {
        return p.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(p.len() + 1);
    for c in parts {
        out.push('/');
        out.push_str(c);
    }
    out
}

fn is_clean(p: &str) -> bool {
    p == "/"
        || p.strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(|c| !matches!(c, "" | "." | "..")))
}

/// `path.Join(parent, name)` for a clean parent and a single component.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Split a clean path into its parent and last component (`/a/b` -> (`/a`, `b`)).
pub fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(0) => ("/", &p[1..]),
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("/", p),
    }
}

/// Each component of a clean path with the path that ends with it (`/a/b` -> (`a`, `/a`),
/// (`b`, `/a/b`)), as slices of `p`: a walk down the tree names where it stopped without
/// building a string per level.
pub fn prefixes(p: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        while p[start..].starts_with('/') {
            start += 1;
        }
        if start >= p.len() {
            return None;
        }
        let end = p[start..].find('/').map_or(p.len(), |i| start + i);
        let r = (&p[start..end], &p[..end]);
        start = end;
        Some(r)
    })
}

/// Components of a clean path (`/a/b` -> [`a`, `b`]; `/` -> []).
pub fn components(p: &str) -> impl Iterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty())
}

/// etcd's hidden test for watchers: is the key hidden as seen from the watched path, i.e.
/// does the part of `key` below `watch` contain a component starting with `_`?
pub fn is_hidden_from(watch: &str, key: &str) -> bool {
    if watch.len() > key.len() {
        return false;
    }
    let after = clean(&format!("/{}", &key[watch.len()..]));
    after.contains("/_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(""), "/");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("foo"), "/foo");
        assert_eq!(clean("//foo//bar/"), "/foo/bar");
        assert_eq!(clean("/foo/./bar/../baz"), "/foo/baz");
        assert_eq!(clean("/../../x"), "/x");
        // Almost clean: each takes the slow way.
        assert_eq!(clean("/foo/"), "/foo");
        assert_eq!(clean("/foo/."), "/foo");
        assert_eq!(clean("/foo/.."), "/");
        assert_eq!(clean("/foo//bar"), "/foo/bar");
        // Clean already, dots inside names included.
        assert_eq!(clean("/foo/.bar/..baz/b.."), "/foo/.bar/..baz/b..");
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split("/a/b"), ("/a", "b"));
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn hidden() {
        assert!(is_hidden_from("/", "/_foo"));
        assert!(is_hidden_from("/foo", "/foo/_bar/baz"));
        assert!(!is_hidden_from("/foo", "/foo/bar"));
        assert!(!is_hidden_from("/foo/bar/baz", "/foo"));
    }
}
