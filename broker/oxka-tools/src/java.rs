//! What Kafka's tools print comes out of Java objects: a `HashMap`'s iteration order and
//! `Double.toString`. Where a tool prints those as they come, these functions give the same text.

/// `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub fn string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The order in which a `java.util.HashMap` created with `new HashMap<>(initial_capacity)` and then
/// given keys with these hash codes (distinct keys, in this order) iterates them: the indices into
/// `hashes`. Entries are visited bucket by bucket; a bucket keeps insertion order, also across resizes
/// (Java 8's split keeps it). Buckets that would turn into trees (8 keys in one bucket) never happen
/// for the few keys a tool prints.
pub fn hash_map_order(hashes: &[i32], initial_capacity: usize) -> Vec<usize> {
    // HashMap(int): the first put allocates tableSizeFor(initial_capacity) buckets; a put that makes
    // size > threshold (capacity * 0.75, truncated) doubles the table.
    let mut capacity = initial_capacity.max(1).next_power_of_two();
    let threshold = |capacity: usize| (capacity * 3) / 4;
    for size in 1..=hashes.len() {
        if size > threshold(capacity) {
            capacity *= 2;
        }
    }
    let bucket = |h: i32| {
        let spread = h ^ ((h as u32) >> 16) as i32;
        (spread as u32 as usize) & (capacity - 1)
    };
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    order.sort_by_key(|&i| (bucket(hashes[i]), i));
    order
}

/// `Double.toString(d)`: plain decimals with at least one digit after the point for
/// 10^-3 <= |d| < 10^7, else `d.dddE±n`; the shortest digits that read back as `d`.
pub fn double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let magnitude = d.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let text = format!("{d}");
        return if text.contains('.') { text } else { format!("{text}.0") };
    }
    // Rust's `{:e}` gives the shortest digits too: `1e7`, `1.5e-5`.
    let text = format!("{d:e}");
    let (mantissa, exponent) = text.split_once('e').expect("{:e} has an exponent");
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_is_javas() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        // "user".hashCode() and "client-id".hashCode(), as a JVM printed them.
        assert_eq!(string_hash("user"), 3_599_307);
        assert_eq!(string_hash("client-id"), -1_904_137_635);
    }

    /// The expected orders are what a JVM printed for `HashMap<Integer, _>` (an Integer's hash is its
    /// value) filled in the same order.
    #[test]
    fn hash_map_order_is_by_bucket_then_insertion() {
        // Capacity 16 (the default table): 1 and 17 share bucket 1, 2 is in bucket 2.
        assert_eq!(hash_map_order(&[17, 2, 1], 16), [0, 2, 1]);
        // new HashMap<>(2) with 3 keys grows to 4 buckets: 5 % 4 = 1, 2, 4 % 4 = 0.
        assert_eq!(hash_map_order(&[5, 2, 4], 2), [2, 0, 1]);
        // The high bits are folded in: 0x10000 spreads to bucket 1.
        assert_eq!(hash_map_order(&[0x10000, 0], 16), [1, 0]);
        assert_eq!(hash_map_order(&[], 0), Vec::<usize>::new());
    }

    /// Each expected text is what `Double.toString` printed on a JVM.
    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(double_to_string(1024.0), "1024.0");
        assert_eq!(double_to_string(1.5), "1.5");
        assert_eq!(double_to_string(1_048_576.0), "1048576.0");
        assert_eq!(double_to_string(9_999_999.0), "9999999.0");
        assert_eq!(double_to_string(10_000_000.0), "1.0E7");
        assert_eq!(double_to_string(12_500_000.0), "1.25E7");
        assert_eq!(double_to_string(0.001), "0.001");
        assert_eq!(double_to_string(0.0001), "1.0E-4");
        assert_eq!(double_to_string(0.0), "0.0");
        assert_eq!(double_to_string(-200.0), "-200.0");
    }
}
