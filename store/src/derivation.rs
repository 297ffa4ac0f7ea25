//! Derivations: the `.drv` record, its ATerm text, and how its paths follow.
//!
//! A [`Derivation`] is what `derivationStrict` produces. Its ATerm form,
//!
//! ```text
//! Derive([("out","/nix/store/…-x","","")],[("/nix/store/…-dep.drv",["out"])],
//!        ["/nix/store/…-src"],"x86_64-linux","/bin/sh",["-e","…"],[("name","x"),…])
//! ```
//!
//! is the content of the `.drv` file, whose own path is a text path over it
//! with the input sources and input derivations as references
//! ([`Derivation::drv_path`]).
//!
//! Output paths of an input-addressed derivation come from its *hash
//! modulo fixed outputs* ([`Derivation::hash_modulo`]): the sha256 of the
//! ATerm in which every input derivation path is replaced by the base16 of
//! that input's own hash modulo, so that changing how a fixed-output input
//! is fetched changes nothing downstream. A fixed-output derivation's hash
//! modulo is `sha256("fixed:out:<method+algo>:<hex>:<out path>")`.
//! [`Derivation::fill_output_paths`] runs Nix's procedure: blank the output
//! paths and their environment variables, hash modulo, derive each output
//! path from that, and write the paths back.
//!
//! Strings are Rust `String`s: Nix strings that are not UTF-8 cannot be
//! represented (nixpkgs has none in derivations).
//!
//! As in C++ Nix 2.8, only the builder, arguments and environment are
//! escaped in the ATerm; output names, paths and the platform are written
//! verbatim, so a platform containing `"` yields a `.drv` Nix itself cannot
//! read back (and so do we: the computed paths still match Nix's).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::hash::{encode_base16, Hash, HashAlgo, HashError};
use crate::path::{
    make_fixed_output_path, make_output_path, make_text_path, IngestionMethod, StorePath,
    StorePathError, DRV_EXTENSION,
};

/// One output of a derivation, as its ATerm tuple
/// `(name, path, hash algo, hash)` without the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Output {
    /// The absolute store path; empty until computed.
    pub path: String,
    /// For a fixed output, the ingestion method prefix and algorithm
    /// (`"r:sha256"`, `"sha1"`); empty for input-addressed outputs.
    pub hash_algo: String,
    /// For a fixed output, the expected hash in base16; empty otherwise.
    pub hash: String,
}

impl Output {
    /// An input-addressed output whose path is yet to be computed.
    pub fn input_addressed() -> Output {
        Output::default()
    }

    /// A fixed output (`outputHash`, `outputHashAlgo`, `outputHashMode`)
    /// whose path is yet to be computed.
    pub fn fixed(method: IngestionMethod, hash: &Hash) -> Output {
        Output {
            path: String::new(),
            hash_algo: format!("{}{}", method.prefix(), hash.algo()),
            hash: hash.to_base16(),
        }
    }

    /// Whether this output is fixed (has an expected hash).
    pub fn is_fixed(&self) -> bool {
        !self.hash.is_empty()
    }

    /// The method and hash of a fixed output; `None` for other outputs.
    pub fn fixed_hash(&self) -> Result<Option<(IngestionMethod, Hash)>, HashError> {
        if !self.is_fixed() {
            return Ok(None);
        }
        let (method, algo) = IngestionMethod::split_prefix(&self.hash_algo);
        let algo: HashAlgo = algo.parse()?;
        Ok(Some((method, Hash::parse_unprefixed(&self.hash, algo)?)))
    }
}

/// A store derivation (the contents of a `.drv` file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    /// Outputs by name.
    pub outputs: BTreeMap<String, Output>,
    /// Input derivations (absolute `.drv` paths) and the outputs used of each.
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    /// Input sources (absolute store paths).
    pub input_srcs: BTreeSet<String>,
    /// The `system` to build on.
    pub platform: String,
    /// The program to run.
    pub builder: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment.
    pub env: BTreeMap<String, String>,
}

/// What [`Derivation::instantiate`] computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instantiated {
    /// The path of the `.drv` file.
    pub drv_path: StorePath,
    /// The `.drv` file's contents.
    pub aterm: String,
    /// The derivation's hash modulo fixed outputs, to be recorded under
    /// `drv_path` for derivations that depend on this one.
    pub hash_modulo: [u8; 32],
}

/// Why a derivation's paths or hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerivationError {
    /// The lookup did not know the hash modulo of an input derivation.
    #[error("hash modulo of input derivation '{0}' is unknown")]
    UnknownInputDerivation(String),
    /// A fixed-output derivation with another output than `out`.
    #[error("multiple outputs are not supported in fixed-output derivations")]
    MultipleFixedOutputs,
    /// Some outputs are fixed and some are not.
    #[error("can't mix derivation output types")]
    MixedOutputTypes,
    /// An output with a hash algorithm but no hash (a floating
    /// content-addressed output, an experimental feature we do not support).
    #[error("output '{0}' is content-addressed without a fixed hash, which is not supported")]
    FloatingContentAddressed(String),
    /// A derivation without outputs.
    #[error("derivation has no outputs")]
    NoOutputs,
    /// A fixed output's hash fields do not parse.
    #[error("output '{output}': {source}")]
    BadFixedOutput {
        /// The output's name.
        output: String,
        /// What is wrong with its hash.
        #[source]
        source: HashError,
    },
    /// A computed path is invalid (typically a bad derivation name).
    #[error(transparent)]
    StorePath(#[from] StorePathError),
}

/// Where and why an ATerm could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The text deviates from the grammar at byte `offset`.
    #[error("error parsing derivation at byte {offset}: expected {expected}")]
    Syntax {
        /// Byte offset into the ATerm.
        offset: usize,
        /// What the parser was looking for.
        expected: String,
    },
    /// A path in the ATerm is not a valid store path.
    #[error("error parsing derivation: {0}")]
    StorePath(#[from] StorePathError),
}

/// Classification of a derivation by its outputs.
enum DrvType<'a> {
    /// All outputs input-addressed.
    InputAddressed,
    /// A single fixed output.
    Fixed(&'a str, &'a Output),
}

impl Derivation {
    /// The ATerm text, byte for byte as C++ Nix writes the `.drv` file.
    pub fn to_aterm(&self) -> String {
        self.aterm_with_inputs(None)
    }

    /// Whether this is a fixed-output derivation (every output has a hash).
    pub fn is_fixed_output(&self) -> bool {
        !self.outputs.is_empty() && self.outputs.values().all(Output::is_fixed)
    }

    fn drv_type(&self) -> Result<DrvType<'_>, DerivationError> {
        if self.outputs.is_empty() {
            return Err(DerivationError::NoOutputs);
        }
        if let Some((name, _)) = self
            .outputs
            .iter()
            .find(|(_, o)| !o.hash_algo.is_empty() && o.hash.is_empty())
        {
            return Err(DerivationError::FloatingContentAddressed(name.clone()));
        }
        let fixed = self.outputs.values().filter(|o| o.is_fixed()).count();
        if fixed == 0 {
            return Ok(DrvType::InputAddressed);
        }
        if fixed != self.outputs.len() {
            return Err(DerivationError::MixedOutputTypes);
        }
        match self.outputs.iter().next() {
            Some((name, output)) if self.outputs.len() == 1 => Ok(DrvType::Fixed(name, output)),
            _ => Err(DerivationError::MultipleFixedOutputs),
        }
    }

    /// The hash modulo fixed outputs (C++ Nix's `hashDerivationModulo`).
    ///
    /// `lookup` gives the hash modulo of each input derivation by its
    /// absolute `.drv` path (as recorded from [`Instantiated::hash_modulo`]).
    /// Output paths are hashed as they are: call it after
    /// [`Derivation::fill_output_paths`] to get the value dependents need.
    pub fn hash_modulo<F>(&self, mut lookup: F) -> Result<[u8; 32], DerivationError>
    where
        F: FnMut(&str) -> Option<[u8; 32]>,
    {
        if let DrvType::Fixed(_, output) = self.drv_type()? {
            let fingerprint = format!(
                "fixed:out:{}:{}:{}",
                output.hash_algo, output.hash, output.path
            );
            return Ok(Hash::sha256(fingerprint));
        }
        // Input derivations keyed by their hash modulo; two inputs with the
        // same hash (e.g. fixed outputs fetched two ways) merge.
        let mut inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (drv_path, outputs) in &self.input_drvs {
            let hash = lookup(drv_path)
                .ok_or_else(|| DerivationError::UnknownInputDerivation(drv_path.clone()))?;
            inputs
                .entry(encode_base16(&hash))
                .or_default()
                .extend(outputs.iter().cloned());
        }
        Ok(Hash::sha256(self.aterm_with_inputs(Some(&inputs))))
    }

    /// Computes and sets every output path (and the environment variable
    /// named after each output) of a derivation called `name`, as
    /// `derivationStrict` does. Fixed outputs get their content-addressed
    /// path; input-addressed ones a path from the hash modulo of the
    /// derivation with blank output paths and blank output variables.
    pub fn fill_output_paths<F>(&mut self, name: &str, lookup: F) -> Result<(), DerivationError>
    where
        F: FnMut(&str) -> Option<[u8; 32]>,
    {
        if let DrvType::Fixed(output_name, output) = self.drv_type()? {
            if output_name != "out" {
                return Err(DerivationError::MultipleFixedOutputs);
            }
            let bad = |source| DerivationError::BadFixedOutput {
                output: output_name.to_string(),
                source,
            };
            let Some((method, hash)) = output.fixed_hash().map_err(bad)? else {
                return Err(DerivationError::MixedOutputTypes);
            };
            let path = make_fixed_output_path(method, &hash, name, [""; 0])?.to_string();
            self.env.insert("out".to_string(), path.clone());
            if let Some(out) = self.outputs.get_mut("out") {
                out.path = path;
            }
            return Ok(());
        }
        let output_names: Vec<String> = self.outputs.keys().cloned().collect();
        for output_name in &output_names {
            self.env.insert(output_name.clone(), String::new());
            if let Some(output) = self.outputs.get_mut(output_name) {
                output.path.clear();
            }
        }
        let hash = self.hash_modulo(lookup)?;
        for output_name in &output_names {
            let path = make_output_path(&hash, output_name, name)?.to_string();
            self.env.insert(output_name.clone(), path.clone());
            if let Some(output) = self.outputs.get_mut(output_name) {
                output.path = path;
            }
        }
        Ok(())
    }

    /// The store paths the `.drv` file references: input sources and
    /// input derivations.
    pub fn references(&self) -> BTreeSet<&str> {
        self.input_srcs
            .iter()
            .chain(self.input_drvs.keys())
            .map(String::as_str)
            .collect()
    }

    /// The path of the `.drv` file of this derivation called `name`.
    pub fn drv_path(&self, name: &str) -> Result<StorePath, DerivationError> {
        self.drv_path_for_aterm(name, &self.to_aterm())
    }

    fn drv_path_for_aterm(&self, name: &str, aterm: &str) -> Result<StorePath, DerivationError> {
        let drv_name = format!("{name}{DRV_EXTENSION}");
        let content_hash = Hash::from_sha256(Hash::sha256(aterm));
        Ok(make_text_path(&drv_name, &content_hash, self.references())?)
    }

    /// Everything `derivationStrict` computes for a derivation called
    /// `name`: fills the output paths, then returns the `.drv` path, its
    /// ATerm, and the hash modulo to record for dependents.
    pub fn instantiate<F>(
        &mut self,
        name: &str,
        mut lookup: F,
    ) -> Result<Instantiated, DerivationError>
    where
        F: FnMut(&str) -> Option<[u8; 32]>,
    {
        self.fill_output_paths(name, &mut lookup)?;
        let aterm = self.to_aterm();
        let drv_path = self.drv_path_for_aterm(name, &aterm)?;
        let hash_modulo = self.hash_modulo(&mut lookup)?;
        Ok(Instantiated {
            drv_path,
            aterm,
            hash_modulo,
        })
    }

    /// Serialises, with the input derivations replaced by `inputs` if given.
    fn aterm_with_inputs(&self, inputs: Option<&BTreeMap<String, BTreeSet<String>>>) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str("Derive([");
        write_list(&mut s, &self.outputs, |s, (name, output)| {
            s.push('(');
            write_verbatim(s, name);
            for field in [&output.path, &output.hash_algo, &output.hash] {
                s.push(',');
                write_verbatim(s, field);
            }
            s.push(')');
        });
        s.push_str("],[");
        write_list(
            &mut s,
            inputs.unwrap_or(&self.input_drvs),
            |s, (path, outputs)| {
                s.push('(');
                write_verbatim(s, path);
                s.push_str(",[");
                write_list(s, outputs, |s, o| write_verbatim(s, o));
                s.push_str("])");
            },
        );
        s.push_str("],[");
        write_list(&mut s, &self.input_srcs, |s, p| write_verbatim(s, p));
        s.push_str("],");
        write_verbatim(&mut s, &self.platform);
        s.push(',');
        write_escaped(&mut s, &self.builder);
        s.push_str(",[");
        write_list(&mut s, &self.args, |s, a| write_escaped(s, a));
        s.push_str("],[");
        write_list(&mut s, &self.env, |s, (k, v)| {
            s.push('(');
            write_escaped(s, k);
            s.push(',');
            write_escaped(s, v);
            s.push(')');
        });
        s.push_str("])");
        s
    }

    /// Parses the ATerm text of a `.drv` file.
    pub fn from_aterm(text: &str) -> Result<Derivation, ParseError> {
        let mut p = Parser {
            s: text.as_bytes(),
            pos: 0,
        };
        let mut drv = Derivation::default();
        p.expect("Derive([")?;
        p.list(|p| {
            p.expect("(")?;
            let name = p.string()?;
            p.expect(",")?;
            let path = p.string()?;
            if !path.is_empty() {
                StorePath::from_absolute_path(&path)?;
            }
            p.expect(",")?;
            let hash_algo = p.string()?;
            p.expect(",")?;
            let hash = p.string()?;
            p.expect(")")?;
            drv.outputs.insert(
                name,
                Output {
                    path,
                    hash_algo,
                    hash,
                },
            );
            Ok(())
        })?;
        p.expect(",[")?;
        p.list(|p| {
            p.expect("(")?;
            let path = p.store_path()?;
            p.expect(",[")?;
            let mut outputs = BTreeSet::new();
            p.list(|p| {
                outputs.insert(p.string()?);
                Ok(())
            })?;
            p.expect(")")?;
            drv.input_drvs.insert(path, outputs);
            Ok(())
        })?;
        p.expect(",[")?;
        p.list(|p| {
            drv.input_srcs.insert(p.store_path()?);
            Ok(())
        })?;
        p.expect(",")?;
        drv.platform = p.string()?;
        p.expect(",")?;
        drv.builder = p.string()?;
        p.expect(",[")?;
        p.list(|p| {
            drv.args.push(p.string()?);
            Ok(())
        })?;
        p.expect(",[")?;
        p.list(|p| {
            p.expect("(")?;
            let key = p.string()?;
            p.expect(",")?;
            let value = p.string()?;
            p.expect(")")?;
            drv.env.insert(key, value);
            Ok(())
        })?;
        p.expect(")")?;
        if p.pos != p.s.len() {
            return Err(p.error("end of input"));
        }
        Ok(drv)
    }
}

/// Writes the items of a list separated by commas.
fn write_list<I, T>(s: &mut String, items: I, mut write: impl FnMut(&mut String, T))
where
    I: IntoIterator<Item = T>,
{
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write(s, item);
    }
}

/// A quoted string without escaping (C++ Nix's `printUnquotedString`).
fn write_verbatim(s: &mut String, value: &str) {
    s.push('"');
    s.push_str(value);
    s.push('"');
}

/// A quoted string with `"`, `\`, newline, CR and tab escaped (C++ Nix's `printString`).
fn write_escaped(s: &mut String, value: &str) {
    s.push('"');
    let mut rest = value;
    while let Some(i) = rest.find(['"', '\\', '\n', '\r', '\t']) {
        s.push_str(&rest[..i]);
        s.push_str(match rest.as_bytes()[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => "\\t",
        });
        rest = &rest[i + 1..];
    }
    s.push_str(rest);
    s.push('"');
}

/// A cursor over ATerm text.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> ParseError {
        ParseError::Syntax {
            offset: self.pos,
            expected: expected.to_string(),
        }
    }

    fn expect(&mut self, token: &'static str) -> Result<(), ParseError> {
        if self.s[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.error(&format!("'{token}'")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Parses `item (',' item)* ']'` or just `]`, the `[` being consumed.
    fn list(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }

    /// Parses a quoted string, undoing C++ Nix's escapes (`\n`, `\r`, `\t`,
    /// and `\c` for any other `c`).
    fn string(&mut self) -> Result<String, ParseError> {
        self.expect("\"")?;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("'\"'"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("escaped character"));
                    };
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                }
                other => out.push(other),
            }
        }
        // Only ASCII bytes were removed or replaced, so this cannot fail on
        // `&str` input; report it as a syntax error rather than panic.
        String::from_utf8(out).map_err(|_| self.error("UTF-8 text"))
    }

    fn store_path(&mut self) -> Result<String, ParseError> {
        let path = self.string()?;
        StorePath::from_absolute_path(&path)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    // Every expected value below is what C++ Nix 2.8 wrote for the
    // derivation in the comment above it (`nix-instantiate drvs.nix -A …`,
    // then `cat` of the .drv), with
    //
    //   simple = derivation { name = "simple"; system = "x86_64-linux"; builder = "/bin/sh";
    //     args = [ "-c" "echo \"hi\" > $out" ]; note = "tab\there\nnew\\line\r"; };
    //   multi = derivation { name = "multi"; system = "x86_64-linux"; builder = "/bin/sh";
    //     outputs = [ "out" "dev" "lib" ]; };
    //   fod = derivation { name = "fod"; …; outputHashMode = "flat"; outputHashAlgo = "sha256";
    //     outputHash = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; };
    //   fodRec = derivation { name = "fod-rec"; …; outputHashMode = "recursive";
    //     outputHash = "sha256-J6W1N+bE8sSd4H6wuLnn8FEpk/3t5MRr1X4UB0FCr3g="; };
    //   fodSha1 = derivation { name = "fod-sha1"; …; outputHashAlgo = "sha1";
    //     outputHash = "f572d396fae9206628714fb2ce00f72e94f2258f"; };
    //   dependent = derivation { name = "dependent"; system = "x86_64-linux";
    //     builder = "${simple}/bin/sh"; args = [ "${multi.dev}" "${multi}" ./tree/a.txt ]; fodIn = fod; };
    //   dependent2 = derivation { name = "dependent2"; system = "x86_64-linux";
    //     builder = "/bin/sh"; dep = dependent; fr = fodRec; };

    const SIMPLE_DRV: &str = "/nix/store/rx6v3js6dg1c3z7mzr9rfdasidrdgdiz-simple.drv";
    const SIMPLE: &str = r#"Derive([("out","/nix/store/f0cssgg3a5ylngfbgr21lsp5539prl3x-simple","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \"hi\" > $out"],[("builder","/bin/sh"),("name","simple"),("note","tab\there\nnew\\line\r"),("out","/nix/store/f0cssgg3a5ylngfbgr21lsp5539prl3x-simple"),("system","x86_64-linux")])"#;

    const MULTI_DRV: &str = "/nix/store/v27a425rg4n7prwzpyyw0y1fw2ssc46f-multi.drv";
    const MULTI: &str = r#"Derive([("dev","/nix/store/cnr8n8g7k3l7913d10wbs7mk11byk3qm-multi-dev","",""),("lib","/nix/store/vscn60gjvw2l9cclny9zr26kvxb7gl5d-multi-lib","",""),("out","/nix/store/h49lgbknv1fggzyb77p6d3ag1frnz354-multi","","")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("dev","/nix/store/cnr8n8g7k3l7913d10wbs7mk11byk3qm-multi-dev"),("lib","/nix/store/vscn60gjvw2l9cclny9zr26kvxb7gl5d-multi-lib"),("name","multi"),("out","/nix/store/h49lgbknv1fggzyb77p6d3ag1frnz354-multi"),("outputs","out dev lib"),("system","x86_64-linux")])"#;

    const FOD_DRV: &str = "/nix/store/azdpyp9cy2fw7j3brll4z8waj9dxpdww-fod.drv";
    const FOD: &str = r#"Derive([("out","/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod","sha256","5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fod"),("out","/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod"),("outputHash","5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),("outputHashAlgo","sha256"),("outputHashMode","flat"),("system","x86_64-linux")])"#;

    const FOD_REC_DRV: &str = "/nix/store/a39qryfvcw7b4mpndl8f6nf6kpbxi01m-fod-rec.drv";
    const FOD_REC: &str = r#"Derive([("out","/nix/store/v2vnm229r9n5m5gbrl21l5cv08234abh-fod-rec","r:sha256","27a5b537e6c4f2c49de07eb0b8b9e7f0512993fdede4c46bd57e14074142af78")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fod-rec"),("out","/nix/store/v2vnm229r9n5m5gbrl21l5cv08234abh-fod-rec"),("outputHash","sha256-J6W1N+bE8sSd4H6wuLnn8FEpk/3t5MRr1X4UB0FCr3g="),("outputHashMode","recursive"),("system","x86_64-linux")])"#;

    const FOD_SHA1_DRV: &str = "/nix/store/gy9ibn5y0s8vfzh0lybphdk5489dqbpj-fod-sha1.drv";
    const FOD_SHA1: &str = r#"Derive([("out","/nix/store/x079ks2wzfkhnapbfibnk420vxz2idr7-fod-sha1","sha1","f572d396fae9206628714fb2ce00f72e94f2258f")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fod-sha1"),("out","/nix/store/x079ks2wzfkhnapbfibnk420vxz2idr7-fod-sha1"),("outputHash","f572d396fae9206628714fb2ce00f72e94f2258f"),("outputHashAlgo","sha1"),("system","x86_64-linux")])"#;

    const DEPENDENT_DRV: &str = "/nix/store/152r2a9zjnqkw2x7ksam1shi8bdldcrh-dependent.drv";
    const DEPENDENT: &str = r#"Derive([("out","/nix/store/9zlnrq0x51mzaj27x7ig2gwg6p365h5f-dependent","","")],[("/nix/store/azdpyp9cy2fw7j3brll4z8waj9dxpdww-fod.drv",["out"]),("/nix/store/rx6v3js6dg1c3z7mzr9rfdasidrdgdiz-simple.drv",["out"]),("/nix/store/v27a425rg4n7prwzpyyw0y1fw2ssc46f-multi.drv",["dev","out"])],["/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"],"x86_64-linux","/nix/store/f0cssgg3a5ylngfbgr21lsp5539prl3x-simple/bin/sh",["/nix/store/cnr8n8g7k3l7913d10wbs7mk11byk3qm-multi-dev","/nix/store/h49lgbknv1fggzyb77p6d3ag1frnz354-multi","/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"],[("builder","/nix/store/f0cssgg3a5ylngfbgr21lsp5539prl3x-simple/bin/sh"),("fodIn","/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod"),("name","dependent"),("out","/nix/store/9zlnrq0x51mzaj27x7ig2gwg6p365h5f-dependent"),("system","x86_64-linux")])"#;

    const DEPENDENT2_DRV: &str = "/nix/store/8w8l9lwqfjasvda9niffkixp0y0d4hn9-dependent2.drv";
    const DEPENDENT2: &str = r#"Derive([("out","/nix/store/6sxywmf3vgmjw5glkyzpfny0hzczc5y5-dependent2","","")],[("/nix/store/152r2a9zjnqkw2x7ksam1shi8bdldcrh-dependent.drv",["out"]),("/nix/store/a39qryfvcw7b4mpndl8f6nf6kpbxi01m-fod-rec.drv",["out"])],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("dep","/nix/store/9zlnrq0x51mzaj27x7ig2gwg6p365h5f-dependent"),("fr","/nix/store/v2vnm229r9n5m5gbrl21l5cv08234abh-fod-rec"),("name","dependent2"),("out","/nix/store/6sxywmf3vgmjw5glkyzpfny0hzczc5y5-dependent2"),("system","x86_64-linux")])"#;

    // derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh";
    //   __structuredAttrs = true; outputs = ["out" "dev"]; }
    const STRUCTURED_DRV: &str = "/nix/store/j7z1r504qzj67sw106z9iql89awjqxi6-x.drv";
    const STRUCTURED: &str = r#"Derive([("dev","/nix/store/3zbrv9h2yzkdck0y4wlz8jw7kp751mvf-x-dev","",""),("out","/nix/store/s9729na00yi9hql6kia7l0y5y6jazd86-x","","")],[],[],"x86_64-linux","/bin/sh",[],[("__json","{\"builder\":\"/bin/sh\",\"name\":\"x\",\"outputs\":[\"out\",\"dev\"],\"system\":\"x86_64-linux\"}"),("dev","/nix/store/3zbrv9h2yzkdck0y4wlz8jw7kp751mvf-x-dev"),("out","/nix/store/s9729na00yi9hql6kia7l0y5y6jazd86-x")])"#;

    // derivation { name = "x"; system = "a\"b\\c\nd"; builder = "/bin/sh";
    //   args = ["a\"b\\c\nd\re\tf"]; }  (Nix 2.8 cannot read this .drv back.)
    const UNESCAPED_PLATFORM_DRV: &str = "/nix/store/w6w293jpwyykkgswy9j2z0y8bpcvki2w-x.drv";
    const UNESCAPED_PLATFORM: &str = "Derive([(\"out\",\"/nix/store/05b7v64vqccqpnva1j5m6djwlpxaxzpn-x\",\"\",\"\")],[],[],\"a\"b\\c\nd\",\"/bin/sh\",[\"a\\\"b\\\\c\\nd\\re\\tf\"],[(\"builder\",\"/bin/sh\"),(\"name\",\"x\"),(\"out\",\"/nix/store/05b7v64vqccqpnva1j5m6djwlpxaxzpn-x\"),(\"system\",\"a\\\"b\\\\c\\nd\")])";

    /// What the evaluator would assemble before output paths are known.
    struct Spec<'a> {
        name: &'a str,
        outputs: Vec<(&'a str, Output)>,
        input_drvs: Vec<(&'a str, Vec<&'a str>)>,
        input_srcs: Vec<&'a str>,
        system: &'a str,
        builder: &'a str,
        args: Vec<&'a str>,
        env: Vec<(&'a str, &'a str)>,
    }

    impl Spec<'_> {
        fn build(&self) -> Derivation {
            let mut env: BTreeMap<String, String> = self
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if !env.contains_key("__json") {
                env.insert("name".into(), self.name.into());
                env.insert("system".into(), self.system.into());
                env.insert("builder".into(), self.builder.into());
            }
            Derivation {
                outputs: self
                    .outputs
                    .iter()
                    .map(|(n, o)| (n.to_string(), o.clone()))
                    .collect(),
                input_drvs: self
                    .input_drvs
                    .iter()
                    .map(|(p, os)| (p.to_string(), os.iter().map(|o| o.to_string()).collect()))
                    .collect(),
                input_srcs: self.input_srcs.iter().map(|s| s.to_string()).collect(),
                platform: self.system.into(),
                builder: self.builder.into(),
                args: self.args.iter().map(|a| a.to_string()).collect(),
                env,
            }
        }
    }

    fn spec(name: &str) -> Spec<'_> {
        Spec {
            name,
            outputs: vec![("out", Output::input_addressed())],
            input_drvs: vec![],
            input_srcs: vec![],
            system: "x86_64-linux",
            builder: "/bin/sh",
            args: vec![],
            env: vec![],
        }
    }

    fn fixed(method: IngestionMethod, hash: &str, algo: Option<HashAlgo>) -> Output {
        Output::fixed(method, &Hash::parse_any(hash, algo).unwrap())
    }

    /// Instantiates like `derivationStrict`, records the hash modulo, and
    /// checks the result against Nix's.
    fn check(spec: &Spec<'_>, hashes: &mut HashMap<String, [u8; 32]>, drv_path: &str, aterm: &str) {
        let mut drv = spec.build();
        let result = drv
            .instantiate(spec.name, |p| hashes.get(p).copied())
            .unwrap();
        assert_eq!(result.aterm, aterm, "{}", spec.name);
        assert_eq!(drv.to_aterm(), aterm);
        assert_eq!(result.drv_path.to_string(), drv_path, "{}", spec.name);
        assert_eq!(drv.drv_path(spec.name).unwrap().to_string(), drv_path);
        // The ATerm parses back to the same derivation.
        assert_eq!(Derivation::from_aterm(aterm).unwrap(), drv);
        hashes.insert(drv_path.to_string(), result.hash_modulo);
    }

    /// Nix's own derivations, built in dependency order.
    fn all_reference_derivations(hashes: &mut HashMap<String, [u8; 32]>) {
        let simple = Spec {
            args: vec!["-c", "echo \"hi\" > $out"],
            env: vec![("note", "tab\there\nnew\\line\r")],
            ..spec("simple")
        };
        check(&simple, hashes, SIMPLE_DRV, SIMPLE);

        let multi = Spec {
            outputs: ["out", "dev", "lib"]
                .into_iter()
                .map(|o| (o, Output::input_addressed()))
                .collect(),
            env: vec![("outputs", "out dev lib")],
            ..spec("multi")
        };
        check(&multi, hashes, MULTI_DRV, MULTI);

        let fod_hash = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let fod = Spec {
            outputs: vec![(
                "out",
                fixed(IngestionMethod::Flat, fod_hash, Some(HashAlgo::Sha256)),
            )],
            env: vec![
                ("outputHash", fod_hash),
                ("outputHashAlgo", "sha256"),
                ("outputHashMode", "flat"),
            ],
            ..spec("fod")
        };
        check(&fod, hashes, FOD_DRV, FOD);

        let sri = "sha256-J6W1N+bE8sSd4H6wuLnn8FEpk/3t5MRr1X4UB0FCr3g=";
        let fod_rec = Spec {
            outputs: vec![("out", fixed(IngestionMethod::Recursive, sri, None))],
            env: vec![("outputHash", sri), ("outputHashMode", "recursive")],
            ..spec("fod-rec")
        };
        check(&fod_rec, hashes, FOD_REC_DRV, FOD_REC);

        let sha1 = "f572d396fae9206628714fb2ce00f72e94f2258f";
        let fod_sha1 = Spec {
            outputs: vec![(
                "out",
                fixed(IngestionMethod::Flat, sha1, Some(HashAlgo::Sha1)),
            )],
            env: vec![("outputHash", sha1), ("outputHashAlgo", "sha1")],
            ..spec("fod-sha1")
        };
        check(&fod_sha1, hashes, FOD_SHA1_DRV, FOD_SHA1);

        let dependent = Spec {
            input_drvs: vec![
                (SIMPLE_DRV, vec!["out"]),
                (MULTI_DRV, vec!["out", "dev"]),
                (FOD_DRV, vec!["out"]),
            ],
            input_srcs: vec!["/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"],
            builder: "/nix/store/f0cssgg3a5ylngfbgr21lsp5539prl3x-simple/bin/sh",
            args: vec![
                "/nix/store/cnr8n8g7k3l7913d10wbs7mk11byk3qm-multi-dev",
                "/nix/store/h49lgbknv1fggzyb77p6d3ag1frnz354-multi",
                "/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt",
            ],
            env: vec![("fodIn", "/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod")],
            ..spec("dependent")
        };
        check(&dependent, hashes, DEPENDENT_DRV, DEPENDENT);

        let dependent2 = Spec {
            input_drvs: vec![(DEPENDENT_DRV, vec!["out"]), (FOD_REC_DRV, vec!["out"])],
            env: vec![
                (
                    "dep",
                    "/nix/store/9zlnrq0x51mzaj27x7ig2gwg6p365h5f-dependent",
                ),
                ("fr", "/nix/store/v2vnm229r9n5m5gbrl21l5cv08234abh-fod-rec"),
            ],
            ..spec("dependent2")
        };
        check(&dependent2, hashes, DEPENDENT2_DRV, DEPENDENT2);
    }

    #[test]
    fn simple_derivation() {
        check(
            &Spec {
                args: vec!["-c", "echo \"hi\" > $out"],
                env: vec![("note", "tab\there\nnew\\line\r")],
                ..spec("simple")
            },
            &mut HashMap::new(),
            SIMPLE_DRV,
            SIMPLE,
        );
    }

    #[test]
    fn multi_output_derivation() {
        let multi = Spec {
            outputs: ["out", "dev", "lib"]
                .into_iter()
                .map(|o| (o, Output::input_addressed()))
                .collect(),
            env: vec![("outputs", "out dev lib")],
            ..spec("multi")
        };
        check(&multi, &mut HashMap::new(), MULTI_DRV, MULTI);
    }

    #[test]
    fn fixed_output_derivation() {
        let sri = "sha256-J6W1N+bE8sSd4H6wuLnn8FEpk/3t5MRr1X4UB0FCr3g=";
        let fod_rec = Spec {
            outputs: vec![("out", fixed(IngestionMethod::Recursive, sri, None))],
            env: vec![("outputHash", sri), ("outputHashMode", "recursive")],
            ..spec("fod-rec")
        };
        check(&fod_rec, &mut HashMap::new(), FOD_REC_DRV, FOD_REC);
    }

    #[test]
    fn derivation_graph_with_fixed_outputs() {
        let mut hashes = HashMap::new();
        all_reference_derivations(&mut hashes);
        assert_eq!(hashes.len(), 7);
    }

    #[test]
    fn structured_attrs_still_get_output_variables() {
        let json =
            r#"{"builder":"/bin/sh","name":"x","outputs":["out","dev"],"system":"x86_64-linux"}"#;
        let s = Spec {
            outputs: vec![
                ("out", Output::input_addressed()),
                ("dev", Output::input_addressed()),
            ],
            env: vec![("__json", json)],
            ..spec("x")
        };
        check(&s, &mut HashMap::new(), STRUCTURED_DRV, STRUCTURED);
    }

    #[test]
    fn platform_is_not_escaped() {
        let s = Spec {
            system: "a\"b\\c\nd",
            args: vec!["a\"b\\c\nd\re\tf"],
            ..spec("x")
        };
        let mut drv = s.build();
        let result = drv.instantiate("x", |_| None).unwrap();
        assert_eq!(result.aterm, UNESCAPED_PLATFORM);
        assert_eq!(result.drv_path.to_string(), UNESCAPED_PLATFORM_DRV);
        assert!(Derivation::from_aterm(UNESCAPED_PLATFORM).is_err());
    }

    #[test]
    fn fixed_output_hash_modulo_ignores_how_it_is_built() {
        let mut hashes = HashMap::new();
        all_reference_derivations(&mut hashes);
        let mut fod = Derivation::from_aterm(FOD).unwrap();
        let h = fod.hash_modulo(|_| None).unwrap();
        assert_eq!(h, hashes[FOD_DRV]);
        assert_eq!(
            h,
            Hash::sha256(
                "fixed:out:sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03:/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod"
            )
        );
        // A different builder changes the .drv but not the hash modulo.
        fod.builder = "/bin/bash".into();
        assert_ne!(fod.drv_path("fod").unwrap().to_string(), FOD_DRV);
        assert_eq!(fod.hash_modulo(|_| None).unwrap(), h);
    }

    #[test]
    fn inputs_are_replaced_by_hash_modulo_and_sorted_by_it() {
        let mut hashes = HashMap::new();
        all_reference_derivations(&mut hashes);
        let drv = Derivation::from_aterm(DEPENDENT).unwrap();
        let mut replaced: Vec<(String, Vec<&str>)> = vec![
            (encode_base16(&hashes[SIMPLE_DRV]), vec!["out"]),
            (encode_base16(&hashes[MULTI_DRV]), vec!["dev", "out"]),
            (encode_base16(&hashes[FOD_DRV]), vec!["out"]),
        ];
        replaced.sort();
        let inputs = replaced
            .iter()
            .map(|(h, os)| {
                format!(
                    "(\"{h}\",[{}])",
                    os.iter()
                        .map(|o| format!("\"{o}\""))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let start = DEPENDENT.find("],[(").unwrap() + 3;
        let end = DEPENDENT.find("],[\"/nix/store/z3n6").unwrap();
        let expected_text = format!("{}{}{}", &DEPENDENT[..start], inputs, &DEPENDENT[end..]);
        assert_eq!(
            drv.hash_modulo(|p| hashes.get(p).copied()).unwrap(),
            Hash::sha256(expected_text)
        );
        // Unknown inputs are reported.
        assert_eq!(
            drv.hash_modulo(|_| None),
            Err(DerivationError::UnknownInputDerivation(FOD_DRV.into()))
        );
    }

    #[test]
    fn two_inputs_with_equal_hash_modulo_merge() {
        // Two fixed-output derivations producing the same path have the same
        // hash modulo; as inputs they collapse into one entry.
        let fod = Derivation::from_aterm(FOD).unwrap();
        let h = fod.hash_modulo(|_| None).unwrap();
        let mut drv = Derivation::from_aterm(SIMPLE).unwrap();
        drv.input_drvs
            .insert(FOD_DRV.into(), BTreeSet::from(["out".to_string()]));
        let other = "/nix/store/00000000000000000000000000000000-fod.drv";
        drv.input_drvs
            .insert(other.into(), BTreeSet::from(["out".to_string()]));
        let merged = drv.hash_modulo(|_| Some(h)).unwrap();
        let mut single = drv.clone();
        single.input_drvs.remove(other);
        assert_eq!(merged, single.hash_modulo(|_| Some(h)).unwrap());
    }

    #[test]
    fn output_errors() {
        let mut two_fixed = spec("x").build();
        let h = Hash::digest(HashAlgo::Sha256, "");
        two_fixed
            .outputs
            .insert("out".into(), Output::fixed(IngestionMethod::Flat, &h));
        two_fixed
            .outputs
            .insert("dev".into(), Output::fixed(IngestionMethod::Flat, &h));
        assert_eq!(
            two_fixed.fill_output_paths("x", |_| None),
            Err(DerivationError::MultipleFixedOutputs)
        );
        let mut mixed = two_fixed.clone();
        mixed
            .outputs
            .insert("dev".into(), Output::input_addressed());
        assert_eq!(
            mixed.fill_output_paths("x", |_| None),
            Err(DerivationError::MixedOutputTypes)
        );
        let mut floating = spec("x").build();
        floating.outputs.insert(
            "out".into(),
            Output {
                hash_algo: "r:sha256".into(),
                ..Output::default()
            },
        );
        assert_eq!(
            floating.fill_output_paths("x", |_| None),
            Err(DerivationError::FloatingContentAddressed("out".into()))
        );
        let mut bad_hash = spec("x").build();
        bad_hash.outputs.insert(
            "out".into(),
            Output {
                hash_algo: "sha256".into(),
                hash: "xyz".into(),
                ..Output::default()
            },
        );
        assert_eq!(
            bad_hash
                .fill_output_paths("x", |_| None)
                .unwrap_err()
                .to_string(),
            "output 'out': hash 'xyz' has wrong length for hash type 'sha256'"
        );
        let mut bad_name = spec("x").build();
        assert_eq!(
            bad_name
                .fill_output_paths("a b", |_| None)
                .unwrap_err()
                .to_string()
                .split('\'')
                .nth(2),
            Some(" contains illegal character ")
        );
        let mut none = spec("x").build();
        none.outputs.clear();
        assert_eq!(
            none.fill_output_paths("x", |_| None),
            Err(DerivationError::NoOutputs)
        );
        assert!(Output::fixed(IngestionMethod::Recursive, &h).is_fixed());
        assert_eq!(
            Output::fixed(IngestionMethod::Recursive, &h).fixed_hash(),
            Ok(Some((IngestionMethod::Recursive, h)))
        );
    }

    #[test]
    fn parser_round_trips_and_rejects_garbage() {
        for aterm in [
            SIMPLE, MULTI, FOD, FOD_REC, FOD_SHA1, DEPENDENT, DEPENDENT2, STRUCTURED,
        ] {
            let drv = Derivation::from_aterm(aterm).unwrap();
            assert_eq!(drv.to_aterm(), aterm);
        }
        let drv = Derivation::from_aterm(DEPENDENT).unwrap();
        assert_eq!(
            drv.input_drvs[MULTI_DRV],
            BTreeSet::from(["dev".into(), "out".into()])
        );
        assert_eq!(
            drv.env["fodIn"],
            "/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod"
        );
        assert_eq!(drv.references().len(), 4);

        let err = |s: &str| Derivation::from_aterm(s).unwrap_err().to_string();
        assert_eq!(
            err("Derive(["),
            "error parsing derivation at byte 8: expected '('"
        );
        assert_eq!(
            err(""),
            "error parsing derivation at byte 0: expected 'Derive(['"
        );
        assert_eq!(
            err(&format!("{SIMPLE} ")),
            format!(
                "error parsing derivation at byte {}: expected end of input",
                SIMPLE.len()
            )
        );
        assert_eq!(
            err(r#"Derive([],[("/tmp/x.drv",["out"])],[],"","",[],[])"#),
            "error parsing derivation: path '/tmp/x.drv' is not in the Nix store"
        );
        assert!(Derivation::from_aterm(r#"Derive([],[],[],"","\"#).is_err());
        assert!(Derivation::from_aterm(r#"Derive([],[],[],"","",["a" "b"],[])"#).is_err());
        // An empty derivation is syntactically fine.
        assert!(Derivation::from_aterm(r#"Derive([],[],[],"","",[],[])"#).is_ok());
    }
}
