// The generated functions (what a code generator writes; edit one and `recipe verify -k`
// recompiles this crate and relinks the library, nothing else).
use std::collections::BTreeMap;
use tvalue::Value;

pub fn dispatch(name: &str, args: &[Value]) -> Result<Value, String> {
    match name {
        "add" => add(args),
        "mean" => mean(args),
        "tag" => tag(args),
        _ => Err(format!("no function '{}'", name)),
    }
}

/// The sum of numbers: an integer when all are integers.
fn add(args: &[Value]) -> Result<Value, String> {
    if args.iter().all(|a| matches!(a, Value::Int(_))) {
        return Ok(Value::Int(args.iter().map(|a| match a { Value::Int(i) => *i, _ => 0 }).sum()));
    }
    let numbers: Option<Vec<f64>> = args.iter().map(Value::number).collect();
    numbers.map(|n| Value::Float(n.iter().sum())).ok_or_else(|| "add takes numbers".to_string())
}

/// The mean of a list of numbers.
fn mean(args: &[Value]) -> Result<Value, String> {
    match args {
        [Value::List(items)] if !items.is_empty() => {
            let numbers: Option<Vec<f64>> = items.iter().map(Value::number).collect();
            let numbers = numbers.ok_or("mean takes a list of numbers")?;
            Ok(Value::Float(numbers.iter().sum::<f64>() / numbers.len() as f64))
        }
        _ => Err("mean takes one non-empty list".to_string()),
    }
}

/// A record `{"tag": name, "value": value}`.
fn tag(args: &[Value]) -> Result<Value, String> {
    match args {
        [Value::Text(name), value] => {
            let mut record = BTreeMap::new();
            record.insert("tag".to_string(), Value::Text(name.clone()));
            record.insert("value".to_string(), value.clone());
            Ok(Value::Record(record))
        }
        _ => Err("tag takes a name and a value".to_string()),
    }
}
