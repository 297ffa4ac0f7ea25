//! Builtins: `toXML`, in exactly the format of C++ Nix's
//! `printValueAsXML` (indented by two spaces, attributes of an element in
//! name order, no source positions). String contexts are collected into the
//! result.

use super::gen;
use crate::errors::EvalResult;
use crate::value::{Args, BuiltinDef, Closure, NixAttrs, StringBuilder, Value};
use crate::vm::{force, EvalState, GenCo, GenFuture};
use rnix::ast;
use rowan::ast::AstNode;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[gen("toXML", 1, to_xml)];

fn to_xml(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        Ok(Value::String(
            value_to_xml(&co, &state, args[0].clone()).await?,
        ))
    })
}

/// Serialises a value as `builtins.toXML` (and `nix-instantiate --eval
/// --xml --no-location`) does, forcing it completely.
pub async fn value_to_xml(
    co: &GenCo,
    state: &Rc<EvalState>,
    v: Value,
) -> EvalResult<crate::value::NixString> {
    let mut w = XmlWriter {
        out: StringBuilder::default(),
        depth: 0,
        drvs_seen: BTreeSet::new(),
        state: state.clone(),
    };
    w.out
        .push_bytes(b"<?xml version='1.0' encoding='utf-8'?>\n");
    w.open("expr", &[]);
    w.value(co, v).await?;
    w.close("expr");
    Ok(w.out.finish())
}

struct XmlWriter {
    out: StringBuilder,
    depth: usize,
    drvs_seen: BTreeSet<Vec<u8>>,
    state: Rc<EvalState>,
}

impl XmlWriter {
    fn start(&mut self, name: &str, attrs: &[(&str, &[u8])]) {
        for _ in 0..self.depth {
            self.out.push_bytes(b"  ");
        }
        self.out.push_bytes(b"<");
        self.out.push_bytes(name.as_bytes());
        // Attributes are written in name order (they are a std::map in C++).
        let mut sorted: Vec<&(&str, &[u8])> = attrs.iter().collect();
        sorted.sort_by_key(|a| a.0);
        for (k, v) in sorted {
            self.out.push_bytes(b" ");
            self.out.push_bytes(k.as_bytes());
            self.out.push_bytes(b"=\"");
            for &c in v.iter() {
                match c {
                    b'"' => self.out.push_bytes(b"&quot;"),
                    b'<' => self.out.push_bytes(b"&lt;"),
                    b'>' => self.out.push_bytes(b"&gt;"),
                    b'&' => self.out.push_bytes(b"&amp;"),
                    b'\n' => self.out.push_bytes(b"&#xA;"),
                    c => self.out.push_bytes(&[c]),
                }
            }
            self.out.push_bytes(b"\"");
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &[u8])]) {
        self.start(name, attrs);
        self.out.push_bytes(b">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        for _ in 0..self.depth {
            self.out.push_bytes(b"  ");
        }
        self.out.push_bytes(b"</");
        self.out.push_bytes(name.as_bytes());
        self.out.push_bytes(b">\n");
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &[u8])]) {
        self.start(name, attrs);
        self.out.push_bytes(b" />\n");
    }

    fn value<'a>(
        &'a mut self,
        co: &'a GenCo,
        v: Value,
    ) -> Pin<Box<dyn Future<Output = EvalResult<()>> + 'a>> {
        Box::pin(async move {
            let v = force(co, v).await;
            match &v {
                Value::Null => self.empty("null", &[]),
                Value::Bool(b) => {
                    let text: &[u8] = if *b { b"true" } else { b"false" };
                    self.empty("bool", &[("value", text)]);
                }
                Value::Int(i) => self.empty("int", &[("value", i.to_string().as_bytes())]),
                Value::Float(f) => {
                    let text = crate::printer::format_float(*f);
                    self.empty("float", &[("value", text.as_bytes())]);
                }
                Value::String(s) => {
                    self.out.add_context(s.context());
                    self.empty("string", &[("value", s.as_bytes())]);
                }
                Value::Path(p) => {
                    let text = p.to_string_lossy();
                    self.empty("path", &[("value", text.as_bytes())]);
                }
                Value::List(l) => {
                    self.open("list", &[]);
                    for item in l.iter() {
                        self.value(co, item.clone()).await?;
                    }
                    self.close("list");
                }
                Value::Attrs(a) => self.attrs(co, a).await?,
                Value::Closure(c) => self.function(c),
                // C++ Nix has no case for primops and falls through to this.
                Value::Builtin(_) => self.empty("unevaluated", &[]),
                Value::Thunk(_) => self.empty("unevaluated", &[]),
            }
            Ok(())
        })
    }

    async fn attrs(&mut self, co: &GenCo, a: &Rc<NixAttrs>) -> EvalResult<()> {
        let is_drv = match a.get(b"type") {
            Some(t) => {
                matches!(force(co, t.clone()).await, Value::String(s) if s.as_bytes() == b"derivation")
            }
            None => false,
        };
        if !is_drv {
            self.open("attrs", &[]);
            self.attr_list(co, a).await?;
            self.close("attrs");
            return Ok(());
        }
        let mut drv_path = Vec::new();
        let mut out_path = None;
        if let Some(p) = a.get(b"drvPath") {
            if let Value::String(s) = force(co, p.clone()).await {
                drv_path = s.as_bytes().to_vec();
            }
        }
        if let Some(p) = a.get(b"outPath") {
            if let Value::String(s) = force(co, p.clone()).await {
                out_path = Some(s.as_bytes().to_vec());
            }
        }
        let mut xml_attrs: Vec<(&str, &[u8])> = Vec::new();
        if a.contains(b"drvPath") && !drv_path.is_empty() {
            xml_attrs.push(("drvPath", &drv_path));
        }
        if let Some(o) = &out_path {
            xml_attrs.push(("outPath", o));
        }
        self.open("derivation", &xml_attrs);
        if !drv_path.is_empty() && self.drvs_seen.insert(drv_path.clone()) {
            self.attr_list(co, a).await?;
        } else {
            self.empty("repeated", &[]);
        }
        self.close("derivation");
        Ok(())
    }

    async fn attr_list(&mut self, co: &GenCo, a: &Rc<NixAttrs>) -> EvalResult<()> {
        for (name, v) in a.iter() {
            self.open("attr", &[("name", name.as_bytes())]);
            self.value(co, v.clone()).await?;
            self.close("attr");
        }
        Ok(())
    }

    fn function(&mut self, c: &Closure) {
        self.open("function", &[]);
        let arg = param_name(&self.state, c);
        match &c.lambda.formals {
            Some(formals) => {
                let mut attrs: Vec<(&str, &[u8])> = Vec::new();
                if let Some(name) = &arg {
                    attrs.push(("name", name.as_bytes()));
                }
                if formals.ellipsis {
                    attrs.push(("ellipsis", b"1"));
                }
                self.open("attrspat", &attrs);
                for (name, _) in &formals.entries {
                    self.empty("attr", &[("name", name.as_bytes())]);
                }
                self.close("attrspat");
            }
            None => {
                let name = arg.unwrap_or_default();
                self.empty("varpat", &[("name", name.as_bytes())]);
            }
        }
        self.close("function");
    }
}

/// The name a lambda binds its whole argument to (`x` in `x: ...` and in
/// `x@{ ... }: ...`), read back from its source text.
fn param_name(state: &EvalState, c: &Closure) -> Option<String> {
    let span = c.lambda.span;
    let file = state.sources.file_of(span.start)?;
    let start = (span.start - file.base) as usize;
    let end = (span.end - file.base) as usize;
    let text = state.sources.text(&file)?;
    let text = text.get(start..end)?;
    let root = rnix::Root::parse(text).tree();
    let ast::Expr::Lambda(lambda) = root.expr()? else {
        return None;
    };
    let ident = match lambda.param()? {
        ast::Param::IdentParam(p) => p.ident()?,
        ast::Param::Pattern(p) => p.pat_bind()?.ident()?,
    };
    Some(ident.syntax().text().to_string())
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;

    #[test]
    fn to_xml() {
        assert_eq!(
            eval("builtins.toXML { a = \"s\"; }").unwrap(),
            r#""<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n      <string value=\"s\" />\n    </attr>\n  </attrs>\n</expr>\n""#
        );
        let f =
            eval("builtins.toXML [ (args@{ x, y ? 1, ... }: x) (z: z) 1.5 null true ]").unwrap();
        assert!(
            f.contains(r#"<attrspat ellipsis=\"1\" name=\"args\">"#),
            "{f}"
        );
        assert!(f.contains(r#"<attr name=\"y\" />"#), "{f}");
        assert!(f.contains(r#"<varpat name=\"z\" />"#), "{f}");
        assert!(f.contains(r#"<float value=\"1.5\" />"#), "{f}");
        assert!(f.contains(r#"<null />"#), "{f}");
        assert!(f.contains(r#"<bool value=\"true\" />"#), "{f}");
        let d = eval(
            "let d = { type = \"derivation\"; drvPath = \"/d.drv\"; outPath = \"/o\"; x = 1; }; \
             in builtins.toXML [ d d ]",
        )
        .unwrap();
        assert!(
            d.contains(r#"<derivation drvPath=\"/d.drv\" outPath=\"/o\">"#),
            "{d}"
        );
        assert!(d.contains("<repeated />"), "{d}");
    }
}
