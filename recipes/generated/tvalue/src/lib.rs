//! The values generated functions compute with: JSON's data model as a Rust enum.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One value. Untagged: it reads and writes as plain JSON (`1`, `"a"`, `[..]`, `{..}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
    Record(BTreeMap<String, Value>),
}

impl Value {
    /// The value as a number, for arithmetic.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A value from JSON text.
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("bad JSON: {}", e))
}

/// A value as compact JSON (records with sorted keys).
pub fn to_json(value: &Value) -> String {
    serde_json::to_string(value).expect("a Value always serialises")
}

/// What a failed call returns: `{"error": "..."}`.
pub fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
