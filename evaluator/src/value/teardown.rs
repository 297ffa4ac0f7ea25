//! Bounded-depth destruction of values.
//!
//! Values form long chains (a thunk capturing the previous thunk, a linked
//! list of sets), and `Rc` frees them recursively: a chain of millions of
//! links would overflow the Rust stack while being freed, taking the
//! daemon with it. Containers hand their children to [`dispose`], which
//! drops them in place until a depth limit, then defers them to a list that
//! the outermost call drains iteratively.

use std::any::Any;
use std::cell::{Cell, RefCell};

/// Nesting beyond which children are deferred instead of dropped in place.
const DEPTH_LIMIT: u32 = 256;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static DEFERRED: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Drops `children` of a container being destroyed, bounding recursion.
pub(crate) fn dispose<T: 'static>(children: T) {
    let Ok(depth) = DEPTH.try_with(Cell::get) else {
        // Thread-local storage is being torn down: nothing to bound with.
        drop(children);
        return;
    };
    if depth >= DEPTH_LIMIT {
        let boxed: Box<dyn Any> = Box::new(children);
        // If thread-local storage is gone the box is dropped right here.
        let _ = DEFERRED.try_with(|d| d.borrow_mut().push(boxed));
        return;
    }
    DEPTH.set(depth + 1);
    drop(children);
    DEPTH.set(depth);
    if depth == 0 {
        // The outermost drop drains what deeper drops deferred.
        loop {
            let next = DEFERRED.try_with(|d| d.borrow_mut().pop()).ok().flatten();
            let Some(item) = next else { break };
            DEPTH.set(1);
            drop(item);
            DEPTH.set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::value::{NixAttrs, NixString, Thunk, Value};

    #[test]
    fn a_million_links_drop_without_overflow() {
        // A chain of sets, each holding the previous: freeing it recursively
        // would need far more than the test thread's stack.
        let mut v = Value::Null;
        for _ in 0..1_000_000 {
            v = Value::attrs(NixAttrs::from_sorted(vec![(NixString::from("next"), v)]));
        }
        drop(v);
        let mut t = Value::Null;
        for _ in 0..1_000_000 {
            let th = Thunk::apply(Value::Null, t);
            t = Value::Thunk(th);
        }
        drop(t);
    }
}
