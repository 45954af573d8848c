//! Runtime request bodies: arbitrary bytes into core's strict request types, then through
//! the real engine on the memory store. A body that parses must never make the engine fail
//! with anything but a domain answer (a signed response or a denial): no internal error, no
//! panic.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use licentia_benches::{EngineFixture, block_on, engine_fixture};
use licentia_core::crypto::canonical_json;
use licentia_core::engine::EngineError;
use licentia_core::model::{ConsumeRequest, FloatingLeaseRequest, RuntimeBindingRequest};
use licentia_core::rules::Binding;

thread_local! {
    static ENGINE: RefCell<Option<EngineFixture>> = const { RefCell::new(None) };
}

/// Domain answers are fine; anything else is a bug.
fn domain(r: Result<licentia_core::engine::ResponseBody, EngineError>, what: &str) {
    match r {
        Ok(_)
        | Err(EngineError::Denied(_))
        | Err(EngineError::IdempotencyConflict)
        | Err(EngineError::InvalidCredentials) => {}
        Err(e) => panic!("{what}: a request body made the engine fail: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    ENGINE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let f = cell.get_or_insert_with(|| engine_fixture(1, 10, 0));
        let call = f.call();
        if let Ok(req) = serde_json::from_slice::<RuntimeBindingRequest>(data) {
            let _ = Binding::from_request(&req);
            canonical_json(&req).expect("a parsed binding request is canonical");
            domain(block_on(f.engine.check(call, &req)), "check");
            domain(block_on(f.engine.validate(call, &req)), "validate");
        }
        if let Ok(req) = serde_json::from_slice::<ConsumeRequest>(data) {
            domain(block_on(f.engine.consume(call, &req)), "consume");
        }
        if let Ok(req) = serde_json::from_slice::<FloatingLeaseRequest>(data) {
            domain(block_on(f.engine.heartbeat(call, &req)), "heartbeat");
        }
    });
});
