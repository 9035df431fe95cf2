//! The one plugin instance a component holds between `open` and the calls after it.
use std::any::Any;
use std::cell::RefCell;

use crate::Error;

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Stores the instance made by `open`, replacing any earlier one.
pub(crate) fn set<T: 'static>(value: T) {
    INSTANCE.with(|i| *i.borrow_mut() = Some(Box::new(value)));
}

/// Runs `f` on the opened instance; a call before `open` is a fatal error.
pub(crate) fn with<T: 'static, R>(f: impl FnOnce(&mut T) -> Result<R, Error>) -> Result<R, Error> {
    INSTANCE.with(|i| {
        let mut slot = i.borrow_mut();
        match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
            Some(t) => f(t),
            None => Err(Error::Fatal("the plugin was called before `open`".into())),
        }
    })
}
