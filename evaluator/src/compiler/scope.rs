//! Lexical scopes of one compilation context (a lambda or thunk body).
//!
//! Every value the frame keeps on the stack has a known slot, so locals are
//! addressed by slot. The compiler tracks the stack depth exactly: a local's
//! slot is the depth at which its value was pushed.

/// A variable (or a hidden value, such as a `with` namespace) on the stack.
#[derive(Debug, Clone)]
pub(super) struct Local {
    /// `None` for hidden values.
    pub name: Option<String>,
    /// Stack slot.
    pub slot: u32,
    /// Whether the value has been pushed (recursive bindings are declared first).
    pub initialised: bool,
    /// Whether this is a `with` namespace.
    pub is_with: bool,
}

/// The scopes of one compilation context.
#[derive(Debug, Default)]
pub(super) struct Scope {
    /// Locals ordered by slot.
    pub locals: Vec<Local>,
    /// Number of values on the stack right now.
    pub stack_depth: u32,
    /// Locals at index >= this are invisible (used while compiling `inherit`
    /// in a binding group, which must see the enclosing scope only).
    pub hidden_from: Option<usize>,
}

impl Scope {
    /// Declares an uninitialised local at the next slot to be pushed, counting
    /// `ahead` values that will be pushed before it.
    pub fn declare(&mut self, name: Option<String>, slot: u32, is_with: bool) -> usize {
        self.locals.push(Local {
            name,
            slot,
            initialised: false,
            is_with,
        });
        self.locals.len() - 1
    }

    /// Finds a visible named local, innermost first.
    pub fn resolve(&self, name: &str) -> Option<&Local> {
        let visible = self.hidden_from.unwrap_or(self.locals.len());
        self.locals[..visible]
            .iter()
            .rev()
            .find(|l| l.name.as_deref() == Some(name))
    }

    /// Slots of visible `with` namespaces, innermost first.
    pub fn with_slots(&self) -> impl Iterator<Item = &Local> {
        let visible = self.hidden_from.unwrap_or(self.locals.len());
        self.locals[..visible].iter().rev().filter(|l| l.is_with)
    }

    /// Removes the locals from index `mark` on and returns how many went.
    pub fn truncate(&mut self, mark: usize) -> u32 {
        let n = self.locals.len() - mark;
        self.locals.truncate(mark);
        n as u32
    }
}
