//! Attribute sets, `let` and `rec`: binding groups (docs/evaluator.md,
//! "Recursive bindings" and "Attribute set opcodes").
//!
//! Nested keys with static names are merged at compile time, as C++ Nix's
//! parser does (`a.b = 1; a.c = 2;` is `a = { b = 1; c = 2; }`, and
//! `a = { b = 1; }; a.c = 2;` merges too). Dynamic keys are never merged:
//! they are inserted at run time and collide with an error.

use super::{child, ident_text, static_attr_name, CResult, Compiler};
use crate::bytecode::Op;
use crate::errors::ErrorKind;
use crate::value::{NixString, Value};
use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;
use std::rc::Rc;

/// One binding group before code generation.
pub(super) struct Bindings {
    recursive: bool,
    entries: Vec<(NixString, rnix::SyntaxNode, Binding)>,
    /// Name -> index into `entries` (sets like all-packages.nix have
    /// thousands of attributes; a scan per name would be quadratic).
    index: rustc_hash::FxHashMap<NixString, usize>,
    dynamic: Vec<(ast::Attr, rnix::SyntaxNode, Binding)>,
    inherit_from: Vec<ast::Expr>,
}

enum Binding {
    Expr(ast::Expr),
    Nested(Bindings),
    /// `inherit name;`: from the enclosing scope.
    Inherit(String),
    /// `inherit (inherit_from[i]) name;`
    InheritFrom(usize, NixString),
}

fn unparen(e: &ast::Expr) -> ast::Expr {
    match e {
        ast::Expr::Paren(p) => p.expr().map(|i| unparen(&i)).unwrap_or_else(|| e.clone()),
        e => e.clone(),
    }
}

impl Compiler<'_, '_> {
    fn collect(
        &self,
        b: &mut Bindings,
        node: &impl HasEntry,
        allow_dynamic: Option<&'static str>,
    ) -> CResult<()> {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let from = inh
                        .from()
                        .map(|f| child(f.expr(), f.syntax()))
                        .transpose()?;
                    let from_idx = from.map(|e| {
                        b.inherit_from.push(e);
                        b.inherit_from.len() - 1
                    });
                    for attr in inh.attrs() {
                        let name = static_attr_name(&attr).ok_or_else(|| {
                            self.error(ErrorKind::DynamicNotAllowed("inherit"), attr.syntax())
                        })?;
                        let binding = match from_idx {
                            Some(i) => Binding::InheritFrom(i, name.clone()),
                            None => Binding::Inherit(name.to_string()),
                        };
                        self.add_static(b, name, attr.syntax().clone(), binding)?;
                    }
                }
                ast::Entry::AttrpathValue(apv) => {
                    let path: Vec<ast::Attr> =
                        child(apv.attrpath(), apv.syntax())?.attrs().collect();
                    let value = child(apv.value(), apv.syntax())?;
                    self.add_path(b, &path, value, allow_dynamic)?;
                }
            }
        }
        Ok(())
    }

    fn add_path(
        &self,
        b: &mut Bindings,
        path: &[ast::Attr],
        value: ast::Expr,
        allow_dynamic: Option<&'static str>,
    ) -> CResult<()> {
        let first = &path[0];
        let rest = &path[1..];
        let node = first.syntax().clone();
        let name = match static_attr_name(first) {
            Some(n) => n,
            None => {
                if let Some(what) = allow_dynamic {
                    return Err(self.error(ErrorKind::DynamicNotAllowed(what), &node));
                }
                let binding = if rest.is_empty() {
                    Binding::Expr(value)
                } else {
                    let mut nested = Bindings::new(false);
                    self.add_path(&mut nested, rest, value, None)?;
                    Binding::Nested(nested)
                };
                b.dynamic.push((first.clone(), node, binding));
                return Ok(());
            }
        };
        let existing = b.index.get(&name).copied();
        let Some(i) = existing else {
            let binding = if rest.is_empty() {
                Binding::Expr(value)
            } else {
                let mut nested = Bindings::new(false);
                self.add_path(&mut nested, rest, value, None)?;
                Binding::Nested(nested)
            };
            b.push(name, node, binding);
            return Ok(());
        };
        // The name exists: only attribute-set literals merge.
        if let Binding::Expr(e) = &b.entries[i].2 {
            if let ast::Expr::AttrSet(s) = unparen(e) {
                let mut nested = Bindings::new(s.rec_token().is_some());
                self.collect(&mut nested, &s, None)?;
                b.entries[i].2 = Binding::Nested(nested);
            }
        }
        let dup = || {
            self.error(
                ErrorKind::DuplicateAttr(path_text(path).unwrap_or_else(|| name.to_string())),
                &node,
            )
        };
        match &mut b.entries[i].2 {
            Binding::Nested(nested) => {
                if rest.is_empty() {
                    match unparen(&value) {
                        ast::Expr::AttrSet(s) => self.collect(nested, &s, None),
                        _ => Err(dup()),
                    }
                } else {
                    self.add_path(nested, rest, value, None)
                }
            }
            _ => Err(dup()),
        }
    }

    fn add_static(
        &self,
        b: &mut Bindings,
        name: NixString,
        node: rnix::SyntaxNode,
        binding: Binding,
    ) -> CResult<()> {
        if b.index.contains_key(&name) {
            return Err(self.error(ErrorKind::DuplicateAttr(name.to_string()), &node));
        }
        b.push(name, node, binding);
        Ok(())
    }

    pub(super) fn compile_attr_set(&mut self, s: &ast::AttrSet) -> CResult<()> {
        let mut b = Bindings::new(s.rec_token().is_some());
        self.collect(&mut b, s, None)?;
        self.compile_bindings_set(b, s.syntax())
    }

    pub(super) fn compile_let(&mut self, l: &ast::LetIn) -> CResult<()> {
        let mut b = Bindings::new(true);
        self.collect(&mut b, l, Some("let"))?;
        let body = child(l.body(), l.syntax())?;
        let mark = self.ctx().scope.locals.len();
        let slots = self.compile_recursive_group(&b, l.syntax(), None)?;
        drop(slots);
        self.compile_expr(&body)?;
        let n = self.ctx().scope.truncate(mark);
        self.emit(Op::ScopeEnd(n), l.syntax());
        Ok(())
    }

    /// `let { a = 1; body = a; }`: a recursive set's `body` attribute.
    pub(super) fn compile_legacy_let(&mut self, l: &ast::LegacyLet) -> CResult<()> {
        let mut b = Bindings::new(true);
        self.collect(&mut b, l, None)?;
        self.compile_bindings_set(b, l.syntax())?;
        self.emit(Op::Force, l.syntax());
        let c = self.string_constant("body");
        self.emit(Op::Select(c), l.syntax());
        Ok(())
    }

    /// Declares and pushes the static bindings of a recursive group; returns
    /// their slots in `b.entries` order (sorted by name).
    ///
    /// With `overrides` (the slot index in `b.entries` of a static
    /// `__overrides` attribute of a `rec` set), each binding's own value goes
    /// to a hidden slot and the visible name is bound to
    /// `__overrides.name or <own value>`: as in C++ Nix, where the overrides
    /// replace the values in the recursive environment, the other bindings
    /// see the overriding values.
    fn compile_recursive_group(
        &mut self,
        b: &Bindings,
        node: &rnix::SyntaxNode,
        overrides: Option<usize>,
    ) -> CResult<Vec<u32>> {
        let mark = self.ctx().scope.locals.len();
        let base = self.depth();
        let k = b.inherit_from.len() as u32;
        let n = b.entries.len() as u32;
        for i in 0..k {
            self.ctx().scope.declare(None, base + i, false);
        }
        // Own values: named directly, or hidden when overrides rebind them.
        let own_base = base + k;
        for (j, (name, _, _)) in b.entries.iter().enumerate() {
            let name = overrides.is_none().then(|| name.to_string());
            self.ctx().scope.declare(name, own_base + j as u32, false);
        }
        let visible_base = if overrides.is_some() {
            for (j, (name, _, _)) in b.entries.iter().enumerate() {
                self.ctx()
                    .scope
                    .declare(Some(name.to_string()), own_base + n + j as u32, false);
            }
            own_base + n
        } else {
            own_base
        };
        let slots: Vec<u32> = (0..n).map(|j| visible_base + j).collect();
        let mut finalise = Vec::new();
        for (i, e) in b.inherit_from.iter().enumerate() {
            if self.compile_value(e, true)? {
                finalise.push(base + i as u32);
            }
            self.ctx().scope.locals[mark + i].initialised = true;
        }
        for (j, (name, n, binding)) in b.entries.iter().enumerate() {
            if self.compile_binding(binding, n, true, Some(name), mark, base)? {
                finalise.push(own_base + j as u32);
            }
            self.ctx().scope.locals[mark + k as usize + j].initialised = true;
        }
        if let Some(ov) = overrides {
            let ctx_idx = self.ctxs.len() - 1;
            let ov_slot = own_base + ov as u32;
            for (j, (name, _, _)) in b.entries.iter().enumerate() {
                let own = own_base + j as u32;
                if j == ov {
                    self.emit(Op::GetLocal(own), node);
                } else {
                    let key = Value::String(name.clone());
                    self.compile_lambda_ctx(node, true, Some(name.to_string()), None, |c| {
                        c.emit_load(ctx_idx, ov_slot, true, node);
                        c.emit(Op::Force, node);
                        let key = c.constant(key);
                        let missing = c.emit(Op::SelectOr(key, 0), node);
                        let to_end = c.emit(Op::Jump(0), node);
                        c.patch_jump(missing);
                        c.set_depth(0);
                        c.emit_load(ctx_idx, own, true, node);
                        c.patch_jump(to_end);
                        c.emit(Op::Force, node);
                        c.emit(Op::Return, node);
                        Ok(())
                    })?;
                }
                self.ctx().scope.locals[mark + (k + n) as usize + j].initialised = true;
            }
        }
        for slot in finalise {
            self.emit(Op::Finalise(slot), node);
        }
        Ok(slots)
    }

    fn compile_bindings_set(&mut self, mut b: Bindings, node: &rnix::SyntaxNode) -> CResult<()> {
        b.entries.sort_by(|x, y| x.0.cmp(&y.0));
        let names: Rc<[NixString]> = b.entries.iter().map(|(n, _, _)| n.clone()).collect();
        let positions: Rc<[u32]> = b
            .entries
            .iter()
            .map(|(_, n, _)| self.span_of(n).start)
            .collect();
        let names_idx = {
            let t = &mut self.ctx().chunk.names;
            t.push((names, positions));
            (t.len() - 1) as u32
        };
        let mark = self.ctx().scope.locals.len();
        let base = self.depth();
        let mut overrides = None;
        if b.recursive {
            let ov = b
                .entries
                .iter()
                .position(|(name, _, _)| name.as_bytes() == b"__overrides");
            let slots = self.compile_recursive_group(&b, node, ov)?;
            overrides = ov.map(|j| slots[j]);
            for slot in &slots {
                self.emit(Op::GetLocal(*slot), node);
            }
        } else {
            for e in &b.inherit_from {
                let slot = self.depth();
                self.compile_value(e, false)?;
                let i = self.ctx().scope.declare(None, slot, false);
                self.ctx().scope.locals[i].initialised = true;
            }
            for (name, n, binding) in &b.entries {
                self.compile_binding(binding, n, false, Some(name), mark, base)?;
            }
        }
        self.emit(Op::Attrs(names_idx), node);
        if let Some(slot) = overrides {
            // `rec { __overrides = { ... }; }`: the overrides replace attributes.
            self.emit(Op::GetLocal(slot), node);
            self.emit(Op::Force, node);
            self.emit(Op::Update, node);
        }
        for (key, n, binding) in &b.dynamic {
            self.compile_attr_key(key)?;
            self.compile_binding(binding, n, false, None, mark, base)?;
            self.emit(Op::AttrsDyn, n);
        }
        let n = self.ctx().scope.truncate(mark);
        if n > 0 {
            self.emit(Op::ScopeEnd(n), node);
        }
        Ok(())
    }

    /// Pushes one binding's value. `group_mark`/`group_base` locate the
    /// group's locals (hidden while compiling `inherit`, and the sources of
    /// `inherit (e)`). Returns whether the pushed thunk needs finalising.
    fn compile_binding(
        &mut self,
        binding: &Binding,
        node: &rnix::SyntaxNode,
        recursive: bool,
        name: Option<&NixString>,
        group_mark: usize,
        group_base: u32,
    ) -> CResult<bool> {
        match binding {
            Binding::Expr(e) => {
                let lambda_name = name.map(|n| n.to_string());
                match unparen(e) {
                    ast::Expr::Lambda(l) if !recursive => {
                        self.compile_lambda(&l, lambda_name)?;
                        Ok(false)
                    }
                    ast::Expr::Lambda(l) => {
                        self.compile_lambda_ctx(e.syntax(), true, None, None, |c| {
                            c.compile_lambda(&l, lambda_name)?;
                            c.emit(Op::Return, l.syntax());
                            Ok(())
                        })
                    }
                    _ => self.compile_value_named(e, recursive, lambda_name),
                }
            }
            Binding::Nested(nested) => {
                let cheap = !recursive
                    && !nested.recursive
                    && nested.dynamic.is_empty()
                    && nested.inherit_from.is_empty();
                let nested = nested.clone_shallow();
                if cheap {
                    self.compile_bindings_set(nested, node)?;
                    Ok(false)
                } else {
                    self.compile_lambda_ctx(node, true, None, None, |c| {
                        c.compile_bindings_set(nested, node)?;
                        c.emit(Op::Return, node);
                        Ok(())
                    })
                }
            }
            Binding::Inherit(var) => {
                let saved = self.ctx().scope.hidden_from;
                if recursive {
                    self.ctx().scope.hidden_from = Some(group_mark);
                }
                let r = (|| {
                    let ident_cheap = matches!(
                        self.resolve(var),
                        super::Resolved::Local { init: true, .. } | super::Resolved::Global(_)
                    );
                    if ident_cheap {
                        self.compile_ident(var, node)?;
                        Ok(false)
                    } else {
                        let var = var.clone();
                        self.compile_lambda_ctx(node, true, None, None, move |c| {
                            c.compile_ident(&var, node)?;
                            c.emit(Op::Force, node);
                            c.emit(Op::Return, node);
                            Ok(())
                        })
                    }
                })();
                self.ctx().scope.hidden_from = saved;
                r
            }
            Binding::InheritFrom(i, attr) => {
                let source_slot = group_base + *i as u32;
                let init = self.ctx().scope.locals[group_mark + *i].initialised;
                let ctx_idx = self.ctxs.len() - 1;
                let attr_c = Value::String(attr.clone());
                self.compile_lambda_ctx(node, true, None, None, move |c| {
                    c.emit_load(ctx_idx, source_slot, init, node);
                    c.emit(Op::Force, node);
                    let k = c.constant(attr_c);
                    c.emit(Op::Select(k), node);
                    c.emit(Op::Force, node);
                    c.emit(Op::Return, node);
                    Ok(())
                })
            }
        }
    }
}

impl Bindings {
    fn new(recursive: bool) -> Self {
        Bindings {
            recursive,
            entries: Vec::new(),
            index: Default::default(),
            dynamic: Vec::new(),
            inherit_from: Vec::new(),
        }
    }

    fn push(&mut self, name: NixString, node: rnix::SyntaxNode, binding: Binding) {
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push((name, node, binding));
    }

    /// Syntax nodes are cheap reference-counted handles, so copying a
    /// binding tree copies no source.
    fn clone_shallow(&self) -> Bindings {
        Bindings {
            recursive: self.recursive,
            entries: self
                .entries
                .iter()
                .map(|(n, s, b)| (n.clone(), s.clone(), b.clone_shallow()))
                .collect(),
            index: self.index.clone(),
            dynamic: self
                .dynamic
                .iter()
                .map(|(a, s, b)| (a.clone(), s.clone(), b.clone_shallow()))
                .collect(),
            inherit_from: self.inherit_from.clone(),
        }
    }
}

impl Binding {
    fn clone_shallow(&self) -> Binding {
        match self {
            Binding::Expr(e) => Binding::Expr(e.clone()),
            Binding::Nested(b) => Binding::Nested(b.clone_shallow()),
            Binding::Inherit(s) => Binding::Inherit(s.clone()),
            Binding::InheritFrom(i, n) => Binding::InheritFrom(*i, n.clone()),
        }
    }
}

fn path_text(path: &[ast::Attr]) -> Option<String> {
    let mut parts = Vec::new();
    for a in path {
        parts.push(match a {
            ast::Attr::Ident(i) => ident_text(i),
            other => static_attr_name(other)?.to_string(),
        });
    }
    Some(parts.join("."))
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn rec_overrides_rebind_names_inside_the_set() {
        assert_eq!(
            ok("(rec { __overrides = { a = 2; }; a = 1; b = a; }).b"),
            "2"
        );
        assert_eq!(
            ok("rec { __overrides = { a = 2; c = b; }; a = 1; b = a + 10; }"),
            "{ __overrides = { a = 2; c = 12; }; a = 2; b = 12; c = 12; }"
        );
        // Functions and dynamic attributes see the override too.
        assert_eq!(
            ok(
                r#"rec { __overrides = { a = 5; }; a = 1; f = x: a + x; r = f 1; "${"d"}" = a; }.r"#
            ),
            "6"
        );
        assert_eq!(
            ok(r#"(rec { __overrides = { a = 5; }; a = 1; "${"d"}" = a; }).d"#),
            "5"
        );
        // `let { ... }` is a recursive set too.
        assert_eq!(
            ok("let { __overrides = { x = 3; }; x = 1; body = x; }"),
            "3"
        );
        // Overriding values stay lazy; a plain set is untouched.
        assert_eq!(
            ok(r#"(rec { __overrides = { a = throw "no"; }; a = 1; b = 2; }).b"#),
            "2"
        );
        assert_eq!(ok("({ __overrides = { a = 2; }; a = 1; }).a"), "1");
        assert!(err("rec { __overrides = 1; a = 1; }").contains("expected a set"));
    }
}
