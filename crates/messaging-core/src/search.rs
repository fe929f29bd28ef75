//! The words a message is indexed under, and the words of a query.
//!
//! A word is a run of Unicode letters or digits, lowercased, 2 to [`MAX_WORD_CHARS`]
//! characters, not one of a short list of English stop words. A message is indexed under at
//! most [`MAX_WORDS_PER_MESSAGE`] distinct words (the first ones it uses): each indexed word is
//! one small item written with the message, so this bounds what a message costs to store.
//! Words never contain `#` or `:`, so they are safe inside a sort key.

/// Longest indexed word, in characters (longer runs are cut, so they still match their start).
pub const MAX_WORD_CHARS: usize = 32;
/// Most distinct words indexed per message.
pub const MAX_WORDS_PER_MESSAGE: usize = 48;
/// Most words a query may use (each adds a filter, not a read).
pub const MAX_QUERY_WORDS: usize = 8;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "so", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "we", "will", "with",
];

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .map(|raw| {
            raw.chars()
                .flat_map(char::to_lowercase)
                .take(MAX_WORD_CHARS)
                .collect::<String>()
        })
        .filter(|w| w.chars().count() >= 2 && !STOP_WORDS.contains(&w.as_str()))
}

/// The distinct words `text` is indexed under, in order of first use.
pub fn index_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in tokens(text) {
        if words.len() == MAX_WORDS_PER_MESSAGE {
            break;
        }
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// The distinct words of a query (at most [`MAX_QUERY_WORDS`]); empty if it has none.
pub fn query_words(query: &str) -> Vec<String> {
    let mut words = index_words(query);
    words.truncate(MAX_QUERY_WORDS);
    words
}

/// Whether `text` contains every word of `query_words` (a message matches a query).
pub fn matches(text: &str, query_words: &[String]) -> bool {
    let mut have: Vec<String> = tokens(text).collect();
    have.sort();
    have.dedup();
    query_words.iter().all(|w| have.binary_search(w).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_deduplicated_and_stop_words_dropped() {
        assert_eq!(
            index_words("The Contract, the CONTRACT and the invoice #42: naïve café"),
            vec!["contract", "invoice", "42", "naïve", "café"]
        );
        assert!(index_words("a I . ! to").is_empty());
    }

    #[test]
    fn a_message_is_indexed_under_a_bounded_number_of_words() {
        let text: String = (0..500).map(|i| format!("word{i} ")).collect();
        assert_eq!(index_words(&text).len(), MAX_WORDS_PER_MESSAGE);
        let long = "x".repeat(100);
        assert_eq!(index_words(&long)[0].chars().count(), MAX_WORD_CHARS);
        assert!(index_words(&long)[0].chars().all(|c| c != '#' && c != ':'));
    }

    #[test]
    fn a_match_needs_every_query_word() {
        let q = query_words("Contract INVOICE");
        assert!(matches("invoice for the contract", &q));
        assert!(!matches("the contract only", &q));
        assert_eq!(query_words("the and of"), Vec::<String>::new());
    }
}
