//! Answers kept beyond the life of a mount: the seam between the
//! evaluation service and a persistent store.
//!
//! The service asks its [`AnswerStore`] before it asks the evaluator, and
//! hands it every permanent answer it gets (the same answers its own cache
//! keeps for the life of the mount). Keys and answers are frames of
//! [`crate::protocol`]: a request frame is the key, an answer frame the
//! value, so a store needs to know nothing of nodes or paths.
//!
//! A stored answer is only as good as the inputs it was evaluated from.
//! The service passes on the inputs the evaluation read
//! ([`AnswerStore::inputs`]) and marks with [`AnswerStore::sync`] each
//! point where every answer handed over so far is covered by the inputs
//! handed over so far: a store makes answers durable only up to such a
//! point, so that a store found after a crash never holds an answer whose
//! inputs it does not know. Deciding whether stored answers still hold
//! (observing the inputs again) is the store owner's business, done before
//! the store is attached to a service.

use crate::inputs::Input;

/// A persistent home for a service's answers; see the module docs.
///
/// Called from FUSE threads (`get`) and evaluation threads (the rest), so
/// it must be cheap and must not block on anything the service holds.
pub trait AnswerStore: Send + Sync {
    /// The stored answer frame for a request frame, if there is one.
    fn get(&self, request: &[u8]) -> Option<Vec<u8>>;

    /// Keeps an answer frame for a request frame. Not durable before the
    /// next [`AnswerStore::sync`].
    fn put(&self, request: Vec<u8>, answer: Vec<u8>);

    /// Inputs the evaluation read since the last call (each first
    /// observation).
    fn inputs(&self, inputs: Vec<Input>);

    /// Every answer put so far is covered by the inputs passed so far.
    fn sync(&self);
}
