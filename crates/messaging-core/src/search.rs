//! The words a message is indexed under, and the words of a query.
//!
//! A word is a run of Unicode letters or digits, lowercased, 2 to [`MAX_WORD_CHARS`]
//! characters, not one of a short list of English stop words. A message is indexed under at
//! most [`MAX_WORDS_PER_MESSAGE`] distinct words (the first ones it uses): each indexed word is
//! one small item written with the message, so this bounds what a message costs to store.
//! Words never contain `#` or `:`, so they are safe inside a sort key.
//!
//! The index itself is written off the message path, in **blocks** ([`Block`]): the search
//! indexer (fed by the table's stream) turns each batch of new and edited messages of a
//! tenant into a few items, each holding the words of one hash **bucket** ([`bucket_of`]) at
//! one **level** (how many buckets that batch was split into, [`level_for`]). A query reads,
//! per level, only the blocks of its word's bucket. `docs/search.md` has the design and its
//! cost.

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

/// The bucket counts a batch's postings are split into: a batch whose encoded lines fit in
/// [`LEVEL_ONE_MAX_BYTES`] is one block (level 1: a search reads all of it), a bigger one
/// 8 or 64 blocks (a search reads 1/8 or 1/64). Each level costs a reader one Query.
pub const LEVELS: [u8; 3] = [1, 8, 64];
/// Largest batch written as one block (≈ 10–20 chat lines; a write unit is 1 KB).
pub const LEVEL_ONE_MAX_BYTES: usize = 2 * 1024;
/// Largest batch split into 8 blocks (each then ≈ 2 KB or less).
pub const LEVEL_EIGHT_MAX_BYTES: usize = 16 * 1024;
/// Largest encoded block: a bigger bucket is cut into several blocks. Keeps an item far below
/// DynamoDB's 400 KB and a reader's Query page (1 MB) at 16 blocks or more.
pub const MAX_BLOCK_BYTES: usize = 48 * 1024;

/// FNV-1a, 32 bits: stable across builds and platforms (the bucket is part of stored keys).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The bucket of `word` at `level` (a power of two), in `0..level`.
pub fn bucket_of(word: &str, level: u8) -> u8 {
    debug_assert!(level.is_power_of_two());
    (fnv1a(word.as_bytes()) % u32::from(level.max(1))) as u8
}

/// The level a batch whose lines encode to `bytes` (at level 1) is written at.
pub fn level_for(bytes: usize) -> u8 {
    if bytes <= LEVEL_ONE_MAX_BYTES {
        LEVELS[0]
    } else if bytes <= LEVEL_EIGHT_MAX_BYTES {
        LEVELS[1]
    } else {
        LEVELS[2]
    }
}

/// One message's words in one block: which message, when it was sent (results are ordered by
/// it), which text of it was indexed (`stamp`: its `editedAt`, or its `timestamp` if never
/// edited; a reader keeps the line only if the message still has that text, so an edit's
/// old words never find it and no message is found twice), and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub conversation_id: String,
    pub seq: u64,
    pub timestamp: String,
    pub stamp: String,
    pub words: Vec<String>,
}

/// A block's lines, newest `timestamp` first. Encoded as text, one line per message:
/// `conversationId TAB seq TAB timestamp TAB stamp-or-empty TAB word SP word …` (an empty
/// stamp means "same as timestamp"). Conversation ids are letters, digits, `-_.`; words
/// letters and digits; timestamps RFC 3339: no field can hold a separator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("search block line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

fn safe_field(field: &str) -> bool {
    !field.is_empty() && !field.contains(['\t', '\n', ' '])
}

impl Line {
    fn encode_into(&self, out: &mut String) {
        use std::fmt::Write;
        let stamp = if self.stamp == self.timestamp {
            ""
        } else {
            &self.stamp
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            self.conversation_id,
            self.seq,
            self.timestamp,
            stamp,
            self.words.join(" ")
        );
    }

    /// Bytes this line takes in a block.
    pub fn encoded_len(&self) -> usize {
        let mut s = String::new();
        self.encode_into(&mut s);
        s.len()
    }

    /// Whether every field can be encoded and read back as it is.
    pub fn is_encodable(&self) -> bool {
        safe_field(&self.conversation_id)
            && safe_field(&self.timestamp)
            && (self.stamp.is_empty() || safe_field(&self.stamp))
            && !self.words.is_empty()
            && self.words.iter().all(|w| safe_field(w))
    }

    /// This line with only the words of `bucket` at `level` (`None` if it has none).
    pub fn in_bucket(&self, level: u8, bucket: u8) -> Option<Line> {
        let words: Vec<String> = self
            .words
            .iter()
            .filter(|w| bucket_of(w, level) == bucket)
            .cloned()
            .collect();
        (!words.is_empty()).then(|| Line {
            words,
            ..self.clone()
        })
    }
}

impl Block {
    /// The text stored in the block's item.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            line.encode_into(&mut out);
        }
        out
    }

    /// Reads a block's text back; any malformed line is an error (a block is only ever
    /// written by [`Block::encode`], so this means a corrupt item, not user input).
    pub fn decode(text: &str) -> Result<Block, BlockError> {
        let mut lines = Vec::new();
        for (i, raw) in text.split_terminator('\n').enumerate() {
            let bad = |reason| BlockError::Line {
                line: i + 1,
                reason,
            };
            let mut fields = raw.split('\t');
            let mut next = |what| fields.next().ok_or_else(|| bad(what));
            let conversation_id = next("no conversation id")?.to_owned();
            let seq = next("no seq")?
                .parse::<u64>()
                .map_err(|_| bad("seq is not a number"))?;
            let timestamp = next("no timestamp")?.to_owned();
            let stamp = next("no stamp")?;
            let words: Vec<String> = next("no words")?.split(' ').map(str::to_owned).collect();
            if fields.next().is_some() {
                return Err(bad("too many fields"));
            }
            let line = Line {
                stamp: if stamp.is_empty() {
                    timestamp.clone()
                } else {
                    stamp.to_owned()
                },
                conversation_id,
                seq,
                timestamp,
                words,
            };
            if !line.is_encodable() {
                return Err(bad("empty field"));
            }
            lines.push(line);
        }
        Ok(Block { lines })
    }

    /// The newest `timestamp` of its lines (the block's place in the index).
    pub fn newest(&self) -> Option<&str> {
        self.lines.iter().map(|l| l.timestamp.as_str()).max()
    }

    /// A stable identity of the block's content: a batch written again after a retry
    /// overwrites its own blocks instead of adding copies.
    pub fn id(&self) -> u64 {
        let text = self.encode();
        let (a, b) = text.as_bytes().split_at(text.len() / 2);
        (u64::from(fnv1a(a)) << 32) | u64::from(fnv1a(b) ^ fnv1a(text.as_bytes()))
    }
}

/// Splits one tenant's batch of lines into the blocks to write: the level from their size,
/// then per bucket, newest first, cut at [`MAX_BLOCK_BYTES`]. Lines that cannot be encoded
/// are left out (none can come from a stored message).
pub fn blocks_for(lines: &[Line]) -> Vec<(u8, u8, Block)> {
    let mut lines: Vec<&Line> = lines.iter().filter(|l| l.is_encodable()).collect();
    lines.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.seq.cmp(&b.seq)));
    let level = level_for(lines.iter().map(|l| l.encoded_len()).sum());
    let mut out = Vec::new();
    for bucket in 0..level {
        let mut block = Block::default();
        let mut bytes = 0;
        for line in lines.iter().filter_map(|l| l.in_bucket(level, bucket)) {
            let len = line.encoded_len();
            if bytes + len > MAX_BLOCK_BYTES && !block.lines.is_empty() {
                out.push((level, bucket, std::mem::take(&mut block)));
                bytes = 0;
            }
            bytes += len;
            block.lines.push(line);
        }
        if !block.lines.is_empty() {
            out.push((level, bucket, block));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(conversation: &str, seq: u64, ts: &str, words: &[&str]) -> Line {
        Line {
            conversation_id: conversation.into(),
            seq,
            timestamp: ts.into(),
            stamp: ts.into(),
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    #[test]
    fn a_small_batch_is_one_block_and_a_large_one_is_split_by_bucket() {
        let small = [
            line(
                "team",
                1,
                "2026-01-01T00:00:00.000Z",
                &["contract", "renewal"],
            ),
            line("team", 2, "2026-01-01T00:00:01.000Z", &["lunch"]),
        ];
        let blocks = blocks_for(&small);
        assert_eq!(blocks.len(), 1);
        assert_eq!((blocks[0].0, blocks[0].1), (1, 0));
        assert_eq!(blocks[0].2.lines[0].seq, 2, "newest first");

        let large: Vec<Line> = (0..400)
            .map(|i| {
                line(
                    "team",
                    i,
                    &format!("2026-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60),
                    &["contract", &format!("word{i}"), &format!("other{i}")],
                )
            })
            .collect();
        let blocks = blocks_for(&large);
        assert!(blocks.iter().all(|(level, _, _)| *level == 64));
        for (level, bucket, block) in &blocks {
            assert!(block.encode().len() <= MAX_BLOCK_BYTES);
            for l in &block.lines {
                assert!(l.words.iter().all(|w| bucket_of(w, *level) == *bucket));
            }
        }
        // Every word of every line is in exactly one block of its bucket.
        let postings: usize = blocks
            .iter()
            .map(|(_, _, b)| b.lines.iter().map(|l| l.words.len()).sum::<usize>())
            .sum();
        assert_eq!(postings, 400 * 3);
    }

    #[test]
    fn a_malformed_block_is_an_error_naming_its_line() {
        let good = Block {
            lines: vec![line("team", 7, "2026-01-01T00:00:00.000Z", &["contract"])],
        }
        .encode();
        assert!(Block::decode(&good).is_ok());
        for (text, reason) in [
            ("team\tx\tts\t\tword\n", "seq is not a number"),
            ("team\t1\tts\n", "no stamp"),
            ("team\t1\tts\t\tword\textra\n", "too many fields"),
            ("team\t1\tts\t\t\n", "empty field"),
            ("\t1\tts\t\tw\n", "empty field"),
        ] {
            let text = format!("{good}{text}");
            assert_eq!(
                Block::decode(&text),
                Err(BlockError::Line { line: 2, reason }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn an_edited_line_keeps_its_stamp_and_an_unedited_one_stores_none() {
        let mut edited = line("team", 3, "2026-01-01T00:00:00.000Z", &["invoice"]);
        edited.stamp = "2026-01-02T00:00:00.000Z".into();
        let plain = line("team", 4, "2026-01-01T00:00:00.000Z", &["invoice"]);
        let block = Block {
            lines: vec![edited, plain],
        };
        let text = block.encode();
        assert!(text.ends_with("\t\tinvoice\n"), "{text:?}");
        assert_eq!(Block::decode(&text).unwrap(), block);
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z0-9éß]{2,12}"
    }

    fn any_line() -> impl Strategy<Value = Line> {
        (
            "[A-Za-z0-9._-]{1,20}",
            any::<u64>(),
            "2026-0[1-9]-[0-2][0-9]T[0-2][0-9]:00:00\\.000Z",
            proptest::option::of("2026-1[0-2]-01T00:00:00\\.000Z"),
            proptest::collection::vec(word(), 1..48),
        )
            .prop_map(|(conversation_id, seq, timestamp, stamp, words)| Line {
                stamp: stamp.unwrap_or_else(|| timestamp.clone()),
                conversation_id,
                seq,
                timestamp,
                words,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn blocks_read_back_and_hold_every_posting_once_in_its_bucket(
            lines in proptest::collection::vec(any_line(), 0..120)
        ) {
            let blocks = blocks_for(&lines);
            let mut postings: Vec<(String, u64, String)> = Vec::new();
            for (level, bucket, block) in &blocks {
                prop_assert!(LEVELS.contains(level));
                let text = block.encode();
                prop_assert!(text.len() <= MAX_BLOCK_BYTES);
                prop_assert_eq!(&Block::decode(&text).unwrap(), block);
                for l in &block.lines {
                    for w in &l.words {
                        prop_assert_eq!(bucket_of(w, *level), *bucket);
                        postings.push((l.conversation_id.clone(), l.seq, w.clone()));
                    }
                }
            }
            let mut expected: Vec<(String, u64, String)> = lines
                .iter()
                .flat_map(|l| l.words.iter().map(move |w| (l.conversation_id.clone(), l.seq, w.clone())))
                .collect();
            expected.sort();
            postings.sort();
            prop_assert_eq!(postings, expected);
        }

        #[test]
        fn decoding_any_text_answers_without_panicking(text in "(?s).{0,400}") {
            let _ = Block::decode(&text);
        }
    }

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
