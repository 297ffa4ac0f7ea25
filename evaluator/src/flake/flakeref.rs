//! Flake references in their two forms, attribute sets and URLs, for
//! `builtins.parseFlakeRef` and `builtins.flakeRefToString` (C++ Nix's
//! `FlakeRef::fromAttrs`/`to_string` and `parseFlakeRef`). Covered input
//! types: `indirect`, `github`, `gitlab`, `sourcehut`, `path`, `git`,
//! `mercurial`, `tarball` and `file`. Nothing here touches the network or
//! the filesystem.

use attrfs_fetch::http::percent_decode;
use std::collections::BTreeMap;

/// One attribute of a flake reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    /// A string.
    Str(String),
    /// A non-negative integer.
    Int(u64),
    /// A Boolean.
    Bool(bool),
}

/// The attribute-set form, ordered by name.
pub type Attrs = BTreeMap<String, Attr>;

/// Attributes each input type accepts besides `type`.
fn allowed_attrs(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "indirect" => &["id", "ref", "rev", "narHash"],
        "github" | "gitlab" | "sourcehut" => &[
            "owner",
            "repo",
            "ref",
            "rev",
            "narHash",
            "lastModified",
            "host",
            "treeHash",
        ],
        "path" => &["path", "rev", "revCount", "lastModified", "narHash"],
        "git" => &[
            "url",
            "ref",
            "rev",
            "shallow",
            "submodules",
            "lfs",
            "exportIgnore",
            "lastModified",
            "revCount",
            "narHash",
            "allRefs",
            "name",
            "dirtyRev",
            "dirtyShortRev",
            "verifyCommit",
            "keytype",
            "publicKey",
            "publicKeys",
        ],
        "mercurial" => &["url", "ref", "rev", "revCount", "narHash", "name"],
        "tarball" | "file" => &[
            "url",
            "narHash",
            "name",
            "unpack",
            "rev",
            "revCount",
            "lastModified",
        ],
        _ => return None,
    })
}

fn str_attr<'a>(attrs: &'a Attrs, name: &str) -> Result<Option<&'a str>, String> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Attr::Str(s)) => Ok(Some(s)),
        Some(_) => Err(format!("input attribute '{name}' is not a string")),
    }
}

fn required<'a>(attrs: &'a Attrs, name: &str) -> Result<&'a str, String> {
    str_attr(attrs, name)?.ok_or_else(|| format!("input attribute '{name}' is missing"))
}

fn flag(attrs: &Attrs, name: &str) -> bool {
    matches!(attrs.get(name), Some(Attr::Bool(true)))
}

/// Percent-encodes all but unreserved characters and those in `keep`.
fn percent_encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL split as C++ Nix's `ParsedURL` holds it.
#[derive(Debug, Default)]
struct Url {
    scheme: String,
    authority: Option<String>,
    path: String,
    query: BTreeMap<String, String>,
    fragment: String,
}

impl Url {
    fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = s.split_once(':')?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, percent_decode(f)),
            None => (rest, String::new()),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q),
            None => (rest, ""),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(r) => match r.find('/') {
                Some(i) => (Some(r[..i].to_string()), &r[i..]),
                None => (Some(r.to_string()), ""),
            },
            None => (None, rest),
        };
        let mut q = BTreeMap::new();
        for item in query.split('&').filter(|i| !i.is_empty()) {
            if let Some((k, v)) = item.split_once('=') {
                q.insert(percent_decode(k), percent_decode(v));
            }
        }
        Some(Url {
            scheme: scheme.to_string(),
            authority,
            path: percent_decode(path),
            query: q,
            fragment,
        })
    }

    fn render(&self) -> String {
        let mut out = format!("{}:", self.scheme);
        if let Some(a) = &self.authority {
            out.push_str("//");
            out.push_str(a);
        }
        out.push_str(&percent_encode(&self.path, ":@/"));
        if !self.query.is_empty() {
            out.push('?');
            let items: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        percent_encode(k, ":@/?"),
                        percent_encode(v, ":@/?")
                    )
                })
                .collect();
            out.push_str(&items.join("&"));
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&percent_encode(&self.fragment, ""));
        }
        out
    }
}

fn query_value(a: &Attr) -> String {
    match a {
        Attr::Str(s) => s.clone(),
        Attr::Int(i) => i.to_string(),
        Attr::Bool(b) => if *b { "1" } else { "0" }.to_string(),
    }
}

/// The URL form of a flake reference given as attributes.
pub fn to_string(attrs: &Attrs) -> Result<String, String> {
    let mut attrs = attrs.clone();
    let dir = match attrs.remove("dir") {
        None => String::new(),
        Some(Attr::Str(d)) => d,
        Some(_) => return Err("input attribute 'dir' is not a string".into()),
    };
    let kind = str_attr(&attrs, "type")?
        .ok_or("'type' attribute to specify input scheme is required but not provided")?
        .to_string();
    let allowed =
        allowed_attrs(&kind).ok_or_else(|| format!("input type '{kind}' is not supported"))?;
    if let Some(bad) = attrs
        .keys()
        .find(|k| *k != "type" && !allowed.contains(&k.as_str()))
    {
        return Err(format!(
            "input attribute '{bad}' not supported by scheme '{kind}'"
        ));
    }
    let mut url = match kind.as_str() {
        "indirect" | "github" | "gitlab" | "sourcehut" => {
            let mut path = if kind == "indirect" {
                required(&attrs, "id")?.to_string()
            } else {
                format!(
                    "{}/{}",
                    required(&attrs, "owner")?,
                    required(&attrs, "repo")?
                )
            };
            for part in ["ref", "rev"] {
                if let Some(v) = str_attr(&attrs, part)? {
                    path.push('/');
                    path.push_str(v);
                }
            }
            let mut url = Url {
                scheme: if kind == "indirect" {
                    "flake".into()
                } else {
                    kind.clone()
                },
                path,
                ..Url::default()
            };
            for key in ["narHash", "host"] {
                if let Some(v) = str_attr(&attrs, key)? {
                    url.query.insert(key.into(), v.into());
                }
            }
            url
        }
        "path" => Url {
            scheme: "path".into(),
            path: required(&attrs, "path")?.to_string(),
            query: attrs
                .iter()
                .filter(|(k, _)| *k != "type" && *k != "path")
                .map(|(k, v)| (k.clone(), query_value(v)))
                .collect(),
            ..Url::default()
        },
        "git" | "mercurial" => {
            let raw = required(&attrs, "url")?;
            let mut url = Url::parse(raw).ok_or_else(|| format!("'{raw}' is not a valid URL"))?;
            let prefix = if kind == "git" { "git" } else { "hg" };
            if url.scheme != prefix {
                url.scheme = format!("{prefix}+{}", url.scheme);
            }
            for key in ["rev", "ref"] {
                if let Some(v) = str_attr(&attrs, key)? {
                    url.query.insert(key.into(), v.into());
                }
            }
            if kind == "git" {
                for key in [
                    "shallow",
                    "lfs",
                    "submodules",
                    "exportIgnore",
                    "verifyCommit",
                ] {
                    if flag(&attrs, key) {
                        url.query.insert(key.into(), "1".into());
                    }
                }
            }
            url
        }
        _ => {
            let raw = required(&attrs, "url")?;
            let mut url = Url::parse(raw).ok_or_else(|| format!("'{raw}' is not a valid URL"))?;
            if let Some(h) = str_attr(&attrs, "narHash")? {
                url.query.insert("narHash".into(), h.into());
            }
            url
        }
    };
    if !dir.is_empty() {
        url.query.insert("dir".into(), dir);
    }
    Ok(url.render())
}

fn is_flake_id(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_rev(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_ref(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '@')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+-".contains(c))
}

const TARBALL_EXTENSIONS: &[&str] = &[
    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
];

/// Parses the ref/rev part after an id or `owner/repo`.
fn ref_or_rev(attrs: &mut Attrs, parts: &[&str], url: &str) -> Result<(), String> {
    match parts {
        [] => {}
        [one] if is_rev(one) => {
            attrs.insert("rev".into(), Attr::Str(one.to_string()));
        }
        [r, rev] if is_rev(rev) && is_ref(r) => {
            attrs.insert("ref".into(), Attr::Str(r.to_string()));
            attrs.insert("rev".into(), Attr::Str(rev.to_string()));
        }
        _ => {
            let r = parts.join("/");
            if !is_ref(&r) {
                return Err(format!("in URL '{url}', '{r}' is not a branch/tag name"));
            }
            attrs.insert("ref".into(), Attr::Str(r));
        }
    }
    Ok(())
}

/// The attribute form of a flake reference in URL form.
pub fn parse(s: &str) -> Result<Attrs, String> {
    let mut attrs = Attrs::new();
    let ty = |attrs: &mut Attrs, t: &str| {
        attrs.insert("type".into(), Attr::Str(t.into()));
    };
    // `nixpkgs`, `nixpkgs/nixos-23.05`: an indirect reference.
    let mut parts = s.split('/');
    if parts.next().is_some_and(is_flake_id) && !s.contains(':') {
        let parts: Vec<&str> = s.split('/').collect();
        ty(&mut attrs, "indirect");
        attrs.insert("id".into(), Attr::Str(parts[0].to_string()));
        ref_or_rev(&mut attrs, &parts[1..], s)?;
        return Ok(attrs);
    }
    if s.starts_with('/') {
        ty(&mut attrs, "path");
        attrs.insert("path".into(), Attr::Str(s.to_string()));
        return Ok(attrs);
    }
    let Some(mut url) = Url::parse(s) else {
        return Err(format!("path '{s}' does not exist"));
    };
    if !url.fragment.is_empty() {
        return Err(format!(
            "unexpected fragment '{}' in flake reference '{s}'",
            url.fragment
        ));
    }
    if let Some(dir) = url.query.remove("dir") {
        if !dir.is_empty() {
            attrs.insert("dir".into(), Attr::Str(dir));
        }
    }
    let (application, transport) = match url.scheme.split_once('+') {
        Some((a, t)) => (Some(a.to_string()), t.to_string()),
        None => (None, url.scheme.clone()),
    };
    match (application.as_deref(), transport.as_str()) {
        (None, "flake") => {
            let parts: Vec<&str> = url.path.split('/').collect();
            ty(&mut attrs, "indirect");
            attrs.insert("id".into(), Attr::Str(parts[0].to_string()));
            ref_or_rev(&mut attrs, &parts[1..], s)?;
        }
        (None, kind @ ("github" | "gitlab" | "sourcehut")) => {
            let parts: Vec<&str> = url.path.split('/').collect();
            if parts.len() < 2 {
                return Err(format!("URL '{s}' is invalid"));
            }
            ty(&mut attrs, kind);
            attrs.insert("owner".into(), Attr::Str(parts[0].to_string()));
            attrs.insert("repo".into(), Attr::Str(parts[1].to_string()));
            match &parts[2..] {
                [one] if is_rev(one) => {
                    attrs.insert("rev".into(), Attr::Str(one.to_string()));
                }
                [] => {}
                rest => ref_or_rev(&mut attrs, rest, s)?,
            }
            for key in ["rev", "ref", "host", "narHash"] {
                if let Some(v) = url.query.remove(key) {
                    attrs.insert(key.into(), Attr::Str(v));
                }
            }
        }
        (None, "path") => {
            ty(&mut attrs, "path");
            attrs.insert("path".into(), Attr::Str(url.path.clone()));
            for (k, v) in std::mem::take(&mut url.query) {
                let value = match k.as_str() {
                    "rev" | "narHash" => Attr::Str(v),
                    "revCount" | "lastModified" => Attr::Int(
                        v.parse()
                            .map_err(|_| format!("path URL '{s}' has invalid parameter '{k}'"))?,
                    ),
                    _ => return Err(format!("path URL '{s}' has unsupported parameter '{k}'")),
                };
                attrs.insert(k, value);
            }
        }
        (Some(app @ ("git" | "hg")), _) | (None, app @ "git") => {
            ty(&mut attrs, if app == "git" { "git" } else { "mercurial" });
            if application.is_some() {
                url.scheme = transport.clone();
            }
            for (k, v) in std::mem::take(&mut url.query) {
                match k.as_str() {
                    "rev" | "ref" | "keytype" | "publicKey" | "publicKeys" => {
                        attrs.insert(k, Attr::Str(v));
                    }
                    "shallow" | "submodules" | "lfs" | "exportIgnore" | "allRefs"
                    | "verifyCommit"
                        if app == "git" =>
                    {
                        attrs.insert(k, Attr::Bool(v == "1"));
                    }
                    _ => {
                        url.query.insert(k, v);
                    }
                }
            }
            attrs.insert("url".into(), Attr::Str(url.render()));
        }
        (app, "http" | "https" | "file")
            if app.is_none() || matches!(app, Some("tarball" | "file")) =>
        {
            let tarball = match app {
                Some(a) => a == "tarball",
                None => TARBALL_EXTENSIONS.iter().any(|e| url.path.ends_with(e)),
            };
            ty(&mut attrs, if tarball { "tarball" } else { "file" });
            url.scheme = transport.clone();
            if let Some(h) = url.query.remove("narHash") {
                attrs.insert("narHash".into(), Attr::Str(h));
            }
            attrs.insert("url".into(), Attr::Str(url.render()));
        }
        _ => return Err(format!("input '{s}' is unsupported")),
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::{parse, to_string, Attr, Attrs};

    fn attrs(pairs: &[(&str, &str)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Attr::Str(v.to_string())))
            .collect()
    }

    #[test]
    fn round_trips() {
        let a = attrs(&[
            ("type", "github"),
            ("owner", "NixOS"),
            ("repo", "nixpkgs"),
            ("ref", "23.05"),
            ("dir", "lib"),
        ]);
        assert_eq!(to_string(&a).unwrap(), "github:NixOS/nixpkgs/23.05?dir=lib");
        assert_eq!(parse("github:NixOS/nixpkgs/23.05?dir=lib").unwrap(), a);
        for s in [
            "flake:nixpkgs/nixos-23.05",
            "path:/some/where?lastModified=5",
            "git+https://example.org/repo.git?ref=main&shallow=1",
            "https://example.org/x.tar.gz",
            "hg+https://example.org/repo?rev=abc",
        ] {
            assert_eq!(to_string(&parse(s).unwrap()).unwrap(), s, "{s}");
        }
        assert_eq!(
            parse("nixpkgs").unwrap(),
            attrs(&[("id", "nixpkgs"), ("type", "indirect")])
        );
    }
}
