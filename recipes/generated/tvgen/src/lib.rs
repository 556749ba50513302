//! The C ABI of the generated functions: `tv_apply(name, args_json)` returns the result as
//! JSON in a string the caller gives back with `tv_free`.

mod generated;

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use tvalue::Value;

/// Call generated function `name` with a JSON list of arguments; the result (or
/// `{"error": ...}`) as JSON.
pub fn apply(name: &str, args: &str) -> String {
    let result = match tvalue::parse(args) {
        Ok(Value::List(args)) => generated::dispatch(name, &args),
        Ok(_) => Err("the arguments must be a JSON list".to_string()),
        Err(message) => Err(message),
    };
    match result {
        Ok(value) => tvalue::to_json(&value),
        Err(message) => tvalue::error_json(&message),
    }
}

#[no_mangle]
pub extern "C" fn tv_apply(name: *const c_char, args: *const c_char) -> *mut c_char {
    let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    let out = apply(&text(name), &text(args));
    CString::new(out).expect("JSON has no NUL").into_raw()
}

#[no_mangle]
pub extern "C" fn tv_free(result: *mut c_char) {
    if !result.is_null() {
        drop(unsafe { CString::from_raw(result) });
    }
}
