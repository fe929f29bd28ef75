//! The search index: written in blocks by the search indexer (off the message path, from the
//! table's stream), read by SEARCH. `docs/search.md` explains the layout and its cost;
//! `messaging_core::search` holds the block format and the bucketing.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_dynamo::to_item;

use messaging_core::protocol::MessageView;
use messaging_core::search::{blocks_for, bucket_of, matches, Block, Line, LEVELS};
use messaging_core::{ConversationId, TenantId};

use super::items::{MessageItem, SearchBlockItem};
use futures_util::StreamExt;

use super::requests::{decode_all, s, Item, BATCH_SIZE};
use super::table::{self, Key, PK, SK};
use super::MessagingTable;
use crate::error::{classify, corrupt, AwsError};

/// Blocks read per Query of one level.
const BLOCKS_PER_QUERY: i32 = 16;
/// BatchWriteItem requests of search blocks in flight while indexing a stream batch.
pub const INDEX_WRITES_IN_FLIGHT: usize = 4;
/// Queries one SEARCH request may make (then it answers with a cursor).
const QUERIES_PER_REQUEST: usize = 12;
/// Blocks one SEARCH request may examine (then it answers with a cursor).
const BLOCKS_PER_REQUEST: usize = 96;

/// Where a search continues: at the block whose key ends in `suffix` (inclusive), after its
/// first `skip` lines. Encoded as `{suffix}|{skip}` (the handler signs it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    suffix: String,
    skip: usize,
}

impl Position {
    fn parse(raw: &str) -> Option<Self> {
        let (suffix, skip) = raw.rsplit_once('|')?;
        Some(Self {
            suffix: suffix.to_owned(),
            skip: skip.parse().ok()?,
        })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.suffix, self.skip)
    }
}

/// One level's blocks for the query's word, newest first, read a page at a time.
struct Level {
    prefix: String,
    buffered: VecDeque<(String, Block)>,
    next: Option<Item>,
    exhausted: bool,
}

/// The line a message's current text is indexed under: `None` for a void, a deleted message
/// or one without words.
pub fn line_of(message: &MessageView) -> Option<Line> {
    if message.deleted || message.sender_id.is_system() {
        return None;
    }
    let words = messaging_core::search::index_words(&message.content.text);
    (!words.is_empty()).then(|| Line {
        conversation_id: message.conversation_id.to_string(),
        seq: message.seq,
        timestamp: message.timestamp.clone(),
        stamp: stamp_of(message).to_owned(),
        words,
    })
}

/// Which text of a message a line indexes: its last edit's time, or when it was sent.
fn stamp_of(message: &MessageView) -> &str {
    message.edited_at.as_deref().unwrap_or(&message.timestamp)
}

/// The write units a put of `item` costs: its attribute names and string values, in KB,
/// rounded up (every attribute of a search block is a string).
fn write_units(item: &Item) -> usize {
    let bytes: usize = item
        .iter()
        .map(|(name, value)| name.len() + value.as_s().map_or(0, String::len))
        .sum();
    bytes.div_ceil(1024).max(1)
}

impl MessagingTable {
    /// Several tenants' batches of lines as search blocks, the tenants sharing BatchWriteItem
    /// requests (25 blocks each, [`INDEX_WRITES_IN_FLIGHT`] at a time): a stream batch of many
    /// quiet portals costs a few requests, not one per tenant. A batch written again (a
    /// retried stream batch) writes the same keys with the same content. Write units: DynamoDB
    /// bills a put by the item's size, names and values, rounded up to 1 KB. Per tenant, in order: the
    /// blocks written and their write units, or the error of a request that carried some of
    /// its blocks (then it is written again whole, with the same keys and content).
    pub async fn index_tenants(
        &self,
        tenants: &[(&TenantId, &[Line])],
    ) -> Vec<Result<(usize, usize), AwsError>> {
        let mut results: Vec<Result<(usize, usize), AwsError>> = Vec::with_capacity(tenants.len());
        let mut tagged: Vec<(usize, Item)> = Vec::new();
        for (i, (tenant, lines)) in tenants.iter().enumerate() {
            match Self::block_items(tenant, lines) {
                Ok(items) => {
                    let units = items.iter().map(write_units).sum();
                    results.push(Ok((items.len(), units)));
                    tagged.extend(items.into_iter().map(|item| (i, item)));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let chunks: Vec<Vec<(usize, Item)>> = tagged
            .chunks(BATCH_SIZE)
            .map(<[(usize, Item)]>::to_vec)
            .collect();
        let failed: Vec<(Vec<usize>, AwsError)> = futures_util::stream::iter(chunks)
            .map(|chunk| async move {
                let owners: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
                let items = chunk.into_iter().map(|(_, item)| item).collect();
                self.put_items(items).await.err().map(|e| (owners, e))
            })
            .buffer_unordered(INDEX_WRITES_IN_FLIGHT)
            .filter_map(|failure| async move { failure })
            .collect()
            .await;
        for (owners, error) in failed {
            for i in owners {
                if results[i].is_ok() {
                    results[i] = Err(AwsError::Unavailable(format!(
                        "search blocks not written: {error}"
                    )));
                }
            }
        }
        results
    }

    /// One tenant's lines as block items.
    fn block_items(tenant: &TenantId, lines: &[Line]) -> Result<Vec<Item>, AwsError> {
        let keys = table::tenant(tenant);
        blocks_for(lines)
            .into_iter()
            .map(|(level, bucket, block)| {
                let newest = block.newest().unwrap_or_default().to_owned();
                let key = keys.search_block(level, bucket, &newest, block.id());
                to_item(&SearchBlockItem {
                    pk: key.pk,
                    sk: key.sk,
                    lines: block.encode(),
                })
                .map_err(|e| corrupt("search block", e))
            })
            .collect::<Result<Vec<Item>, AwsError>>()
    }

    /// Messages containing every word of `words` in the `readable` conversations, newest
    /// block first (newest message first within a block): reads the blocks of the longest
    /// word's bucket at each level, merged newest first; keeps the lines with that word in a
    /// readable conversation; fetches those messages and keeps the ones whose current text
    /// is the one indexed and has every word. Returns the results, each with the position
    /// after it (a page trimmed there continues from it), and, when there may be more, the
    /// position to continue from (opaque; the caller signs it).
    pub async fn search_messages(
        &self,
        tenant: &TenantId,
        readable: &HashSet<ConversationId>,
        words: &[String],
        start: Option<String>,
        limit: usize,
    ) -> Result<(Vec<(MessageView, String)>, Option<String>), AwsError> {
        let keys = table::tenant(tenant);
        let Some(word) = words.iter().max_by_key(|w| w.chars().count()) else {
            return Ok((Vec::new(), None));
        };
        let start = match start {
            None => None,
            Some(raw) => Some(Position::parse(&raw).ok_or_else(|| {
                AwsError::Corrupt(format!("search position {raw:?} is not one we issued"))
            })?),
        };
        let mut levels: Vec<Level> = LEVELS
            .iter()
            .map(|&level| Level {
                prefix: keys.search_bucket_prefix(level, bucket_of(word, level)),
                buffered: VecDeque::new(),
                next: None,
                exhausted: false,
            })
            .collect();
        let (mut queries, mut blocks) = (0, 0);
        let mut results: Vec<(MessageView, String)> = Vec::new();
        let mut seen: HashSet<(ConversationId, u64)> = HashSet::new();
        loop {
            for level in levels
                .iter_mut()
                .filter(|l| l.buffered.is_empty() && !l.exhausted)
            {
                if queries == QUERIES_PER_REQUEST {
                    break;
                }
                queries += 1;
                self.read_level(&keys.pk(), level, start.as_ref()).await?;
            }
            // The newest block among the levels; a level with nothing buffered but more to
            // read (the Query budget ran out) stops the merge: its next block may be newer.
            if levels.iter().any(|l| l.buffered.is_empty() && !l.exhausted)
                || blocks == BLOCKS_PER_REQUEST
            {
                let next = levels
                    .iter()
                    .filter_map(|l| l.buffered.front())
                    .map(|(suffix, _)| suffix.clone())
                    .max();
                return Ok((
                    results,
                    next.map(|suffix| Position { suffix, skip: 0 }.encode()),
                ));
            }
            let Some(level) = levels
                .iter_mut()
                .filter(|l| !l.buffered.is_empty())
                .max_by(|a, b| a.buffered[0].0.cmp(&b.buffered[0].0))
            else {
                return Ok((results, None));
            };
            let (suffix, block) = level.buffered.pop_front().expect("not empty");
            blocks += 1;
            let skip = start
                .as_ref()
                .filter(|p| p.suffix == suffix)
                .map_or(0, |p| p.skip);
            let candidates: Vec<(usize, &Line, ConversationId)> = block
                .lines
                .iter()
                .enumerate()
                .skip(skip)
                .filter(|(_, line)| line.words.iter().any(|w| w == word))
                .filter_map(|(i, line)| {
                    let conversation = ConversationId::parse(&line.conversation_id).ok()?;
                    readable
                        .contains(&conversation)
                        .then_some((i, line, conversation))
                })
                .collect();
            let mut wanted: Vec<Key> = candidates
                .iter()
                .map(|(_, line, c)| keys.message(c, line.seq))
                .collect();
            wanted.sort_by(|a, b| a.sk.cmp(&b.sk));
            wanted.dedup();
            let found: HashMap<(ConversationId, u64), MessageView> =
                decode_all::<MessageItem>(self.get_items(&wanted, false).await?, "message")?
                    .into_iter()
                    .map(|m| {
                        (
                            (m.message.conversation_id.clone(), m.message.seq),
                            m.message,
                        )
                    })
                    .collect();
            for (i, line, conversation) in candidates {
                let id = (conversation, line.seq);
                let hit = found.get(&id).filter(|m| {
                    !m.deleted && stamp_of(m) == line.stamp && matches(&m.content.text, words)
                });
                if let Some(message) = hit {
                    if !seen.insert(id) {
                        continue;
                    }
                    let position = Position {
                        suffix: suffix.clone(),
                        skip: i + 1,
                    }
                    .encode();
                    results.push((message.clone(), position.clone()));
                    if results.len() == limit {
                        return Ok((results, Some(position)));
                    }
                }
            }
        }
    }

    /// Reads the next page of one level's blocks (below `start`, inclusive, when resuming).
    async fn read_level(
        &self,
        pk: &str,
        level: &mut Level,
        start: Option<&Position>,
    ) -> Result<(), AwsError> {
        let upper = match start {
            Some(p) => format!("{}{}", level.prefix, p.suffix),
            // Every suffix starts with a digit (a timestamp): '~' sorts after all of them.
            None => format!("{}~", level.prefix),
        };
        let page = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lower", s(&level.prefix))
            .expression_attribute_values(":upper", s(&upper))
            .scan_index_forward(false)
            .limit(BLOCKS_PER_QUERY)
            .set_exclusive_start_key(level.next.take())
            .send()
            .await
            .map_err(|e| classify("Query(search blocks)", e))?;
        for item in decode_all::<SearchBlockItem>(page.items.unwrap_or_default(), "search block")? {
            let block = Block::decode(&item.lines).map_err(|e| corrupt("search block", e))?;
            let suffix = item.sk[level.prefix.len()..].to_owned();
            level.buffered.push_back((suffix, block));
        }
        level.next = page.last_evaluated_key;
        level.exhausted = level.next.is_none();
        Ok(())
    }
}
