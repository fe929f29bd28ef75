//! Files, their shares and comments.

use std::collections::HashMap;

use serde_dynamo::to_item;

use messaging_core::files::{CommentView, FileEntry, FilePermissions, FileView};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{CommentId, ConversationId, FileId, TenantId, UserId};

use super::items::{CommentItem, FileItem, GrantItem, MemberItem, ShareItem};
use super::requests::{decode_all, gsi1sk_of, key_map, s, transact_put, with_prefix, Item};
use super::table::{self, Key};
use super::MessagingTable;
use crate::error::{applied, classify, classify_transaction, corrupt, AwsError};

/// The object key of a file in the files bucket: under its tenant, by file id only (the
/// name a user chose never reaches S3).
pub fn file_object_key(tenant: &TenantId, file: &FileId) -> String {
    format!("tenants/{tenant}/files/{file}")
}

/// The object key of an image's preview: `previews/{clientId}/{fileId}.jpg`, outside `tenants/`:
/// the bucket notifies image-preview of objects under `tenants/`, and its own writes are not news.
pub fn preview_object_key(tenant: &TenantId, file: &FileId) -> String {
    format!("previews/{tenant}/{file}.jpg")
}

/// The tenant and file of an uploaded object's key (`tenants/{clientId}/files/{fileId}`,
/// exactly), or `None` for any other key.
pub fn file_of_object_key(key: &str) -> Option<(TenantId, FileId)> {
    let rest = key.strip_prefix("tenants/")?;
    let (tenant, rest) = rest.split_once('/')?;
    let file = rest.strip_prefix("files/")?;
    Some((TenantId::parse(tenant).ok()?, FileId::parse(file).ok()?))
}

/// A stored file and its object key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub view: FileView,
    pub s3_key: String,
}

impl From<FileItem> for StoredFile {
    fn from(item: FileItem) -> Self {
        Self {
            view: item.file,
            s3_key: item.s3_key,
        }
    }
}

impl MessagingTable {
    fn share_item(
        &self,
        tenant: &TenantId,
        file: &FileId,
        user: &UserId,
        permissions: FilePermissions,
        shared_by: &UserId,
        at: &str,
    ) -> ShareItem {
        let keys = table::tenant(tenant);
        let key = keys.file_share(file, user);
        ShareItem {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: keys.user_conversations_gsi1pk(user),
            gsi1sk: keys.file_gsi1sk(file),
            file_id: file.clone(),
            user: user.clone(),
            permissions: permissions.normalized(),
            shared_by: shared_by.clone(),
            shared_at: at.to_owned(),
        }
    }

    /// Registers a file and its owner's share (so it is listed among the owner's files) in
    /// one transaction. `ConditionFailed` when the id is taken.
    pub async fn register_file(
        &self,
        tenant: &TenantId,
        file: &FileView,
    ) -> Result<StoredFile, AwsError> {
        let keys = table::tenant(tenant);
        let key = keys.file(&file.file_id);
        let item = FileItem {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: keys.files_gsi1pk(),
            gsi1sk: keys.file_gsi1sk(&file.file_id),
            file: file.clone(),
            s3_key: file_object_key(tenant, &file.file_id),
        };
        let owner_share = self.share_item(
            tenant,
            &file.file_id,
            &file.owner,
            FilePermissions::ALL,
            &file.owner,
            &file.created_at,
        );
        self.client
            .transact_write_items()
            .transact_items(transact_put(
                &self.name,
                to_item(&item).map_err(|e| corrupt("file", e))?,
                Some("attribute_not_exists(PK)"),
            )?)
            .transact_items(transact_put(
                &self.name,
                to_item(&owner_share).map_err(|e| corrupt("share", e))?,
                None,
            )?)
            .send()
            .await
            .map_err(|e| classify_transaction("TransactWriteItems(register file)", e))?;
        Ok(item.into())
    }

    pub async fn file(
        &self,
        tenant: &TenantId,
        file: &FileId,
    ) -> Result<Option<StoredFile>, AwsError> {
        let key = table::tenant(tenant).file(file);
        Ok(self
            .get_as::<FileItem>(&key, "file")
            .await?
            .map(StoredFile::from))
    }

    /// Records the size of a file's next version (its upload URL signs it). `false` when the
    /// file is gone.
    pub async fn set_file_size(
        &self,
        tenant: &TenantId,
        file: &FileId,
        size: u64,
    ) -> Result<bool, AwsError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).file(file))))
            .update_expression("SET #size = :size")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#size", "size")
            .expression_attribute_values(":size", super::requests::n(size))
            .send()
            .await;
        applied("UpdateItem(file size)", updated)
    }

    /// Records what the upload of an image gave (`image-preview`). A file deleted meanwhile
    /// is left alone (`false`).
    pub async fn set_image_info(
        &self,
        tenant: &TenantId,
        file: &FileId,
        info: &messaging_core::files::ImageInfo,
    ) -> Result<bool, AwsError> {
        let value = serde_dynamo::to_attribute_value(info).map_err(|e| corrupt("image", e))?;
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).file(file))))
            .update_expression("SET #image = :image")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#image", "image")
            .expression_attribute_values(":image", value)
            .send()
            .await;
        applied("UpdateItem(file image)", updated)
    }

    /// What `user` was granted on `file`, if anything.
    pub async fn share(
        &self,
        tenant: &TenantId,
        file: &FileId,
        user: &UserId,
    ) -> Result<Option<FilePermissions>, AwsError> {
        let key = table::tenant(tenant).file_share(file, user);
        Ok(self
            .get_as::<ShareItem>(&key, "share")
            .await?
            .map(|share| share.permissions))
    }

    /// Grants (or replaces) `user`'s permissions on `file`.
    pub async fn put_share(
        &self,
        tenant: &TenantId,
        file: &FileId,
        user: &UserId,
        permissions: FilePermissions,
        shared_by: &UserId,
    ) -> Result<(), AwsError> {
        let item = self.share_item(
            tenant,
            file,
            user,
            permissions,
            shared_by,
            &rfc3339_millis(now_millis()),
        );
        self.put_item(&item, "share").await
    }

    /// Removes `user`'s share; `false` when there was none.
    pub async fn revoke_share(
        &self,
        tenant: &TenantId,
        file: &FileId,
        user: &UserId,
    ) -> Result<bool, AwsError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).file_share(file, user))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        applied("DeleteItem(share)", deleted)
    }

    /// Lets the members of `conversation` read `file` (and download it, when `download`): the
    /// file was posted there. The grant only grows: a later post without `download` leaves
    /// an earlier one's. The caller keeps a file within
    /// [`messaging_core::files::MAX_FILE_GRANTS`] conversations (it reads [`Self::grants_of`]
    /// before storing the message that posts it; two posts at the same moment may pass that by
    /// one each: it bounds reads, it is not a security limit).
    pub async fn grant_to_conversation(
        &self,
        tenant: &TenantId,
        file: &FileId,
        conversation: &ConversationId,
        download: bool,
        by: &UserId,
        now: i64,
    ) -> Result<(), AwsError> {
        let download_expression = if download {
            "#download = :true"
        } else {
            "#download = if_not_exists(#download, :false)"
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(
                &table::tenant(tenant).file_grant(file, conversation),
            )))
            .update_expression(format!(
                "SET fileId = :file, conversationId = :conversation, #read = :true, {download_expression}, \
                 grantedBy = if_not_exists(grantedBy, :by), grantedAt = if_not_exists(grantedAt, :at)"
            ))
            .expression_attribute_names("#read", "read")
            .expression_attribute_names("#download", "download")
            .expression_attribute_values(":file", s(file.as_str()))
            .expression_attribute_values(":conversation", s(conversation.as_str()))
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":by", s(by.as_str()))
            .expression_attribute_values(":at", s(rfc3339_millis(now)));
        // DynamoDB refuses a value the expression does not use.
        let update = if download {
            update
        } else {
            update.expression_attribute_values(
                ":false",
                aws_sdk_dynamodb::types::AttributeValue::Bool(false),
            )
        };
        update
            .send()
            .await
            .map_err(|e| classify("UpdateItem(file grant)", e))?;
        Ok(())
    }

    /// The conversations `file` was posted into, and what their members may do with it.
    pub async fn grants_of(
        &self,
        tenant: &TenantId,
        file: &FileId,
    ) -> Result<Vec<(ConversationId, FilePermissions)>, AwsError> {
        let keys = table::tenant(tenant);
        let items = self
            .query_prefix(
                &keys.pk(),
                &keys.file_grants_prefix(file),
                false,
                "Query(file grants)",
            )
            .await?;
        Ok(decode_all::<GrantItem>(items, "grant")?
            .into_iter()
            .map(|g| {
                let permissions = FilePermissions {
                    read: g.read,
                    download: g.download,
                    ..FilePermissions::NONE
                };
                (g.conversation_id, permissions.normalized())
            })
            .collect())
    }

    /// What `user` may do with `file` as a member of the conversations it was posted into
    /// (the union of their grants; nothing when none): one Query and one consistent
    /// BatchGetItem of the memberships, so a removed member loses access at once.
    pub async fn granted_through_conversations(
        &self,
        tenant: &TenantId,
        file: &FileId,
        user: &UserId,
    ) -> Result<FilePermissions, AwsError> {
        let grants = self.grants_of(tenant, file).await?;
        if grants.is_empty() {
            return Ok(FilePermissions::NONE);
        }
        let keys = table::tenant(tenant);
        let wanted: Vec<Key> = grants.iter().map(|(c, _)| keys.member(c, user)).collect();
        let memberships: std::collections::HashSet<ConversationId> =
            decode_all::<MemberItem>(self.get_items(&wanted, true).await?, "member")?
                .into_iter()
                .filter(|m| m.user == *user)
                .map(|m| m.conversation_id)
                .collect();
        Ok(grants
            .into_iter()
            .filter(|(c, _)| memberships.contains(c))
            .fold(FilePermissions::NONE, |all, (_, p)| FilePermissions {
                read: all.read || p.read,
                comment: all.comment || p.comment,
                edit: all.edit || p.edit,
                download: all.download || p.download,
            }))
    }

    /// The users a file is shared with and their permissions (the owner included).
    pub async fn shares_of(
        &self,
        tenant: &TenantId,
        file: &FileId,
    ) -> Result<Vec<(UserId, FilePermissions)>, AwsError> {
        let keys = table::tenant(tenant);
        let items = self
            .query_prefix(
                &keys.pk(),
                &keys.file_shares_prefix(file),
                false,
                "Query(file shares)",
            )
            .await?;
        Ok(decode_all::<ShareItem>(items, "share")?
            .into_iter()
            .map(|s| (s.user, s.permissions))
            .collect())
    }

    /// The tenant's OWNERs and ADMINs (as of their last connection).
    pub async fn staff(&self, tenant: &TenantId) -> Result<Vec<UserId>, AwsError> {
        let pk = table::tenant(tenant).staff_gsi1pk();
        let entries = self.query_gsi1(&pk, None, "Query(GSI1 staff)").await?;
        Ok(entries
            .iter()
            .filter_map(|i| gsi1sk_of(i).and_then(table::staff_from_gsi1sk))
            .collect())
    }

    /// The files listed in GSI1 partition `pk` (the tenant's files, or a user's shares).
    async fn file_ids_in(&self, tenant: &TenantId, pk: String) -> Result<Vec<FileId>, AwsError> {
        let prefix = table::tenant(tenant).files_gsi1_prefix();
        let entries = self
            .query_gsi1(&pk, Some(prefix), "Query(GSI1 files)")
            .await?;
        Ok(entries
            .iter()
            .filter_map(|i| gsi1sk_of(i).and_then(table::file_from_gsi1sk))
            .collect())
    }

    async fn files_by_id(
        &self,
        tenant: &TenantId,
        ids: &[FileId],
    ) -> Result<Vec<FileView>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<Key> = ids.iter().map(|f| keys.file(f)).collect();
        let mut files: Vec<FileView> =
            decode_all::<FileItem>(self.get_items(&wanted, false).await?, "file")?
                .into_iter()
                .map(|i| i.file)
                .collect();
        files.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(files)
    }

    /// Every file of the tenant, newest first (OWNER/ADMIN).
    pub async fn all_files(&self, tenant: &TenantId) -> Result<Vec<FileView>, AwsError> {
        let ids = self
            .file_ids_in(tenant, table::tenant(tenant).files_gsi1pk())
            .await?;
        self.files_by_id(tenant, &ids).await
    }

    /// The files shared with `user` (their own included) and what they may do, newest first.
    pub async fn files_shared_with(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<FileEntry>, AwsError> {
        let keys = table::tenant(tenant);
        let ids = self
            .file_ids_in(tenant, keys.user_conversations_gsi1pk(user))
            .await?;
        let shares: Vec<Key> = ids.iter().map(|f| keys.file_share(f, user)).collect();
        let permissions: HashMap<FileId, FilePermissions> =
            decode_all::<ShareItem>(self.get_items(&shares, false).await?, "share")?
                .into_iter()
                .map(|s| (s.file_id, s.permissions))
                .collect();
        Ok(self
            .files_by_id(tenant, &ids)
            .await?
            .into_iter()
            .filter_map(|file| {
                let permissions = permissions.get(&file.file_id).copied()?;
                Some(FileEntry { file, permissions })
            })
            .collect())
    }

    pub async fn put_comment(
        &self,
        tenant: &TenantId,
        comment: &CommentView,
    ) -> Result<(), AwsError> {
        let key = table::tenant(tenant).file_comment(&comment.file_id, &comment.comment_id);
        let item = CommentItem {
            pk: key.pk,
            sk: key.sk,
            comment: comment.clone(),
        };
        // Comment ids are fresh UUIDv7s: a taken one is a bug, never overwritten.
        if !self.put_new(&item, "comment").await? {
            return Err(AwsError::ConditionFailed(format!(
                "PutItem(comment): {} exists",
                comment.comment_id
            )));
        }
        Ok(())
    }

    pub async fn comment_exists(
        &self,
        tenant: &TenantId,
        file: &FileId,
        comment: &CommentId,
    ) -> Result<bool, AwsError> {
        let key = table::tenant(tenant).file_comment(file, comment);
        self.exists(&key, "GetItem(comment)").await
    }

    /// A file's comments oldest first, after comment `after`; and the last one returned
    /// when there are more.
    pub async fn comments_page(
        &self,
        tenant: &TenantId,
        file: &FileId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> Result<(Vec<CommentView>, Option<CommentId>), AwsError> {
        let keys = table::tenant(tenant);
        let exclusive: Option<Item> = after.map(|c| key_map(&keys.file_comment(file, c)));
        let output = with_prefix(
            self.client.query().table_name(&self.name),
            &keys.pk(),
            &keys.file_comments_prefix(file),
        )
        .limit(limit as i32 + 1)
        .set_exclusive_start_key(exclusive)
        .send()
        .await
        .map_err(|e| classify("Query(comments)", e))?;
        let mut comments: Vec<CommentView> =
            decode_all::<CommentItem>(output.items.unwrap_or_default(), "comment")?
                .into_iter()
                .map(|c| c.comment)
                .collect();
        let more = comments.len() > limit;
        comments.truncate(limit);
        let next = if more {
            comments.last().map(|c| c.comment_id.clone())
        } else {
            None
        };
        Ok((comments, next))
    }
}
