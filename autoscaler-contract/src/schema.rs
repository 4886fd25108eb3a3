//! The schema check: the JSON Schema subset the Gitea and Hetzner specs use.

use serde_json::Value;

use crate::Spec;

pub(crate) struct Validator<'a> {
    pub(crate) spec: &'a Spec,
}

impl Validator<'_> {
    pub(crate) fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.spec.resolve(schema);
        if value.is_null() {
            return self.check_null(schema, at);
        }
        for all in schema["allOf"].as_array().into_iter().flatten() {
            self.check(all, value, at)?;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let errors: Vec<String> = options
                    .iter()
                    .filter_map(|o| self.check(o, value, at).err())
                    .collect();
                if errors.len() == options.len() {
                    return Err(format!(
                        "{at}: matches none of {key}: {}",
                        errors.join("; ")
                    ));
                }
            }
        }
        if let Some(choices) = schema["enum"].as_array()
            && !choices.contains(value)
        {
            return Err(format!(
                "{at}: {value} is not one of {}",
                Value::from(choices.clone())
            ));
        }
        match schema["type"].as_str() {
            None => {}
            Some("object") => self.check_object(schema, value, at)?,
            Some("array") => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{at}: expected an array, got {}", kind(value)))?;
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"))?;
                }
            }
            Some("string") => {
                let s = value
                    .as_str()
                    .ok_or_else(|| format!("{at}: expected a string, got {}", kind(value)))?;
                if schema["format"] == "date-time" && s.parse::<jiff::Timestamp>().is_err() {
                    return Err(format!("{at}: `{s}` is not an RFC 3339 date-time"));
                }
            }
            Some("integer") => {
                if !(value.is_i64() || value.is_u64()) {
                    return Err(format!("{at}: expected an integer, got {}", kind(value)));
                }
                self.check_range(schema, value, at)?;
            }
            Some("number") => {
                if !value.is_number() {
                    return Err(format!("{at}: expected a number, got {}", kind(value)));
                }
                self.check_range(schema, value, at)?;
            }
            Some("boolean") if !value.is_boolean() => {
                return Err(format!("{at}: expected a boolean, got {}", kind(value)));
            }
            Some("boolean") => {}
            Some(other) => return Err(format!("{at}: the schema has an unknown type `{other}`")),
        }
        Ok(())
    }

    fn check_null(&self, schema: &Value, at: &str) -> Result<(), String> {
        let nullable = schema["nullable"] == true
            || schema["x-nullable"] == true
            // go-swagger: Go encodes nil slices, maps and pointers as null.
            || (self.spec.go_nulls()
                && matches!(schema["type"].as_str(), Some("array" | "object") | None));
        let alternatives = ["oneOf", "anyOf", "allOf"]
            .iter()
            .filter_map(|k| schema[*k].as_array())
            .flatten()
            .any(|s| self.check_null(self.spec.resolve(s), at).is_ok());
        if nullable || alternatives {
            Ok(())
        } else {
            Err(format!("{at}: null is not allowed here"))
        }
    }

    fn check_object(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object, got {}", kind(value)))?;
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) && !self.spec.is_not_required(name) {
                return Err(format!("{at}: the required field `{name}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, v) in object {
            let path = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(s) => self.check(s, v, &path)?,
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => {
                        return Err(format!("{path}: the schema allows no field `{name}`"));
                    }
                    s @ Value::Object(_) => self.check(s, v, &path)?,
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn check_range(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let n = value.as_f64().unwrap_or_default();
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            return Err(format!("{at}: {value} is below the minimum {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            return Err(format!("{at}: {value} is above the maximum {max}"));
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
