//! A real NixOS configuration (`../shared/corpus/nixos/small-server.nix`)
//! over nixpkgs-20.09: host name, `/etc` names and texts, systemd
//! services, users, ports, and the drvPath of `system.build.toplevel`
//! (which covers every derivation of the system), compared with what C++
//! Nix 2.8 computes (`small-server.expected.json`, produced by the
//! expression in `../shared/corpus/README.md`, reproduced here).

use attrfs_eval::cli::EvalCommand;
use attrfs_eval::EvalOptions;
use attrfs_tests::{require_corpus, require_shared, run_isolated, Outcome};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(600);

/// The corpus README's expression for `small-server.expected.json`.
fn expression(nixpkgs: &str, config: &str) -> String {
    format!(
        r#"let
  sys = import {nixpkgs}/nixos {{ configuration = {config}; system = "x86_64-linux"; }};
  c = sys.config; etc = c.environment.etc;
in {{
  hostName = c.networking.hostName;
  toplevel = c.system.build.toplevel.drvPath;
  etcNames = builtins.attrNames etc;
  etcText = builtins.listToAttrs (builtins.concatMap (n: let e = etc.${{n}}; r = builtins.tryEval (e.text or null); in
    if r.success && r.value != null then [ {{ name = n; value = r.value; }} ] else []) (builtins.attrNames etc));
  services = builtins.attrNames c.systemd.services;
  sshdExecStart = c.systemd.services.sshd.serviceConfig.ExecStart or null;
  users = builtins.attrNames c.users.users;
  tcpPorts = c.networking.firewall.allowedTCPPorts;
  timeZone = c.time.timeZone;
  locale = c.i18n.defaultLocale;
}}"#
    )
}

#[test]
fn nixos_small_server_matches_cpp_nix() {
    let (Some(shared), Some(corpus)) = (require_shared(), require_corpus()) else {
        return;
    };
    let nixpkgs = corpus.join("nixpkgs-20.09");
    let config = shared.join("corpus/nixos/small-server.nix");
    let config = config.canonicalize().expect("small-server.nix exists");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("corpus/nixos/small-server.expected.json"))
            .expect("read small-server.expected.json"),
    )
    .expect("parse small-server.expected.json");

    let cmd = EvalCommand {
        invocation: attrfs_eval::Invocation::expr(expression(
            &nixpkgs.display().to_string(),
            &config.display().to_string(),
        )),
        strict: true,
        json: true,
        ..EvalCommand::default()
    };
    let options = EvalOptions {
        search_path: Vec::new(),
        ..EvalOptions::default()
    };
    let out = match run_isolated(cmd, options, DEADLINE) {
        Outcome::Ok(out) => out,
        Outcome::Err(e) => panic!("evaluation failed:\n{e}"),
        Outcome::Timeout => panic!("evaluation did not finish in {DEADLINE:?}"),
        Outcome::Panic(p) => panic!("the evaluator panicked: {p}"),
    };
    let got: serde_json::Value =
        serde_json::from_slice(&out).expect("the evaluator prints valid JSON");

    let (want, got) = (
        expected.as_object().expect("an object"),
        got.as_object().expect("the result is an object"),
    );
    let mut diffs = Vec::new();
    for (key, w) in want {
        let g = got.get(key).unwrap_or(&serde_json::Value::Null);
        if key == "etcText" {
            // One line per differing file, to make misses readable.
            let (w, g) = (w.as_object(), g.as_object());
            let (Some(w), Some(g)) = (w, g) else {
                diffs.push("etcText: not an object".to_string());
                continue;
            };
            for (name, text) in w {
                if g.get(name) != Some(text) {
                    diffs.push(format!(
                        "etcText.{name}: got {:?}",
                        g.get(name)
                            .map(|v| v.to_string().chars().take(200).collect::<String>())
                    ));
                }
            }
            for name in g.keys().filter(|n| !w.contains_key(*n)) {
                diffs.push(format!("etcText.{name}: not in C++ Nix's result"));
            }
        } else if g != w {
            diffs.push(format!("{key}: got {g}, C++ Nix has {w}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "differences from C++ Nix:\n{}",
        diffs.join("\n")
    );
}
