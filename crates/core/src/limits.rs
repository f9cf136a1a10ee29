//! Field sizes every path in enforces (HTTP publish, imports, hpfeeds, sensor events): one set
//! of numbers, so that a value refused on one path is not stored through another.

/// Longest description, in characters. An import truncates a longer one (counted); a publish
/// refuses it.
pub const MAX_DESCRIPTION: usize = 4096;
/// Longest identifier (`sensor`, `protocol`, `idempotency_key`), in bytes. Longer: the record is
/// refused, naming the field.
pub const MAX_IDENT: usize = 128;

/// `s` cut to at most `max` characters; true when it was cut.
pub fn truncate_chars(s: &mut String, max: usize) -> bool {
    match s.char_indices().nth(max) {
        Some((at, _)) => {
            s.truncate(at);
            true
        }
        None => false,
    }
}

/// Check an identifier field: at most [`MAX_IDENT`] bytes, no control characters.
pub fn check_ident(field: &str, v: &str) -> Result<(), String> {
    if v.len() > MAX_IDENT {
        return Err(format!("`{field}` is {} bytes; at most {MAX_IDENT}", v.len()));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("`{field}` holds control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        let mut s = "é".repeat(5);
        assert!(truncate_chars(&mut s, 3));
        assert_eq!(s, "ééé");
        assert!(!truncate_chars(&mut s, 3));
        assert!(check_ident("sensor", &"x".repeat(129)).is_err());
        assert!(check_ident("sensor", "pot-1").is_ok());
    }
}
