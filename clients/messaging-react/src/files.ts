import { useMemo } from "react";
import {
  MessagingError,
  type Ack,
  type CommentPosition,
  type FileComment,
  type FileEntry,
  type FilePermissions,
  type MessagingClient,
  type PresignedUrl,
} from "@stackpro/messaging-client";
import { useLiveStore, useMessagingClient } from "./context.js";
import { asError } from "./conversation.js";
import { appendNew, LiveStore } from "./store.js";

const PAGE = 100;
/** Files kept in the list. */
export const MAX_FILES = 500;
/** Comments kept per file view. */
export const MAX_COMMENTS = 1_000;

export interface FilesView {
  status: "loading" | "ready" | "error";
  /** Files you may read (yours, shared with you, the tenant's for OWNER and ADMIN), with your permissions. */
  files: readonly FileEntry[];
  hasMore: boolean;
  error: MessagingError | undefined;
}

/** What `upload` needs of a file: a browser `File` has all of it. */
export interface UploadSource {
  name: string;
  size: number;
  type: string;
}

/** Your files, live: shares and revokes arrive as they happen. */
export class FilesStore extends LiveStore<FilesView> {
  #cursor: string | undefined;

  constructor(client: MessagingClient) {
    super(client, { status: "loading", files: [], hasMore: false, error: undefined });
  }

  protected listen(): (() => void)[] {
    const c = this.client;
    return [
      c.onFrame("FILE_SHARED", ({ file, permissions }) => this.upsert({ ...file, permissions })),
      c.onFrame("FILE_SHARE_REVOKED", ({ fileId, userId }) => {
        if (userId === c.userId) this.set((v) => ({ ...v, files: v.files.filter((f) => f.fileId !== fileId) }));
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.listFiles({ limit: PAGE });
      this.#cursor = page.nextCursor;
      this.set({ status: "ready", files: page.files, hasMore: page.nextCursor !== undefined, error: undefined });
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }

  async loadMore(): Promise<void> {
    if (this.#cursor === undefined || this.snapshot.files.length >= MAX_FILES) return;
    const page = await this.client.listFiles({ limit: PAGE, cursor: this.#cursor });
    this.#cursor = page.nextCursor;
    this.set((v) => {
      const files = (appendNew(v.files, page.files, (f) => f.fileId) ?? v.files).slice(0, MAX_FILES);
      return { ...v, files, hasMore: page.nextCursor !== undefined && files.length < MAX_FILES };
    });
  }

  upsert(file: FileEntry): void {
    this.set((v) => ({ ...v, files: [file, ...v.files.filter((f) => f.fileId !== file.fileId)].slice(0, MAX_FILES) }));
  }

  /**
   * Registers the file (REGISTER_FILE) and puts its bytes straight into the bucket through the
   * presigned URL the answer carries. Rejects with UPLOAD_FAILED (and the HTTP status) when the
   * bucket refuses them; the file stays registered, and `GET_UPLOAD_URL` can try again.
   */
  async upload(source: UploadSource, body: BodyInit, put: typeof fetch = fetch): Promise<FileEntry> {
    const answer = await this.client.registerFile({ name: source.name, size: source.size, mimeType: source.type || "application/octet-stream" });
    const entry: FileEntry = { ...answer.file, permissions: answer.permissions };
    this.upsert(entry);
    if (answer.upload) await putBytes(answer.upload, body, put, source.name);
    return entry;
  }
}

async function putBytes(url: PresignedUrl, body: BodyInit, put: typeof fetch, name: string): Promise<void> {
  let response: Response;
  try {
    response = await put(url.url, { method: url.method, headers: url.headers, body });
  } catch (error) {
    throw new MessagingError("UNAVAILABLE", `the upload of ${name} failed: ${error instanceof Error ? error.message : String(error)}`, { retryable: true });
  }
  if (!response.ok) {
    throw new MessagingError("UNAVAILABLE", `the upload of ${name} was refused: HTTP ${response.status}`, { retryable: response.status >= 500 });
  }
}

export interface UseFiles extends FilesView {
  /** Registers and uploads a browser `File` (or any Blob with a name). */
  upload(file: UploadSource & Blob): Promise<FileEntry>;
  share(fileId: string, userId: string, permissions: Partial<FilePermissions>): Promise<Ack>;
  revoke(fileId: string, userId: string): Promise<Ack>;
  /** A fresh presigned GET (needs `download`). */
  downloadUrl(fileId: string): Promise<PresignedUrl>;
  loadMore(): Promise<void>;
}

export function useFiles(): UseFiles {
  const client = useMessagingClient();
  const { state, store } = useLiveStore("files", (c) => new FilesStore(c));
  return useMemo(
    () => ({
      ...state,
      upload: (file: UploadSource & Blob) => store.upload(file, file),
      share: (fileId: string, userId: string, permissions: Partial<FilePermissions>) => client.shareFile(fileId, userId, permissions),
      revoke: (fileId: string, userId: string) => client.revokeFileShare(fileId, userId),
      downloadUrl: (fileId: string) => client.getDownloadUrl(fileId),
      loadMore: () => store.loadMore(),
    }),
    [state, store, client],
  );
}

// ---- Comments ------------------------------------------------------------------------------------

export interface FileCommentsView {
  status: "loading" | "ready" | "error";
  /** Oldest first (comment ids are time-ordered). */
  comments: readonly FileComment[];
  hasMore: boolean;
  error: MessagingError | undefined;
}

/** The comments of one file: listed (oldest first), then live FILE_COMMENT frames, each once. */
export class FileCommentsStore extends LiveStore<FileCommentsView> {
  readonly fileId: string;
  #cursor: string | undefined;

  constructor(client: MessagingClient, fileId: string) {
    super(client, { status: "loading", comments: [], hasMore: false, error: undefined });
    this.fileId = fileId;
  }

  protected listen(): (() => void)[] {
    return [
      this.client.onFrame("FILE_COMMENT", ({ comment }) => {
        if (comment.fileId === this.fileId) this.#merge([comment]);
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.listFileComments(this.fileId, { limit: PAGE });
      this.#cursor = page.nextCursor;
      this.set((v) => ({ ...v, status: "ready", hasMore: page.nextCursor !== undefined, error: undefined }));
      this.#merge(page.comments);
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }

  async loadMore(): Promise<void> {
    if (this.#cursor === undefined || this.snapshot.comments.length >= MAX_COMMENTS) return;
    const page = await this.client.listFileComments(this.fileId, { limit: PAGE, cursor: this.#cursor });
    this.#cursor = page.nextCursor;
    this.#merge(page.comments);
    this.set((v) => ({ ...v, hasMore: page.nextCursor !== undefined && v.comments.length < MAX_COMMENTS }));
  }

  /**
   * Posts a comment (needs `comment`). It is shown once acknowledged: the server sends the
   * comment to every other reader, and to your other connections, but not to this one.
   */
  async post(content: string, options: { position?: CommentPosition; parentCommentId?: string } = {}): Promise<Ack> {
    const ack = await this.client.commentOnFile({ fileId: this.fileId, content, ...options });
    if (ack.commentId !== undefined) {
      this.#merge([
        {
          fileId: this.fileId,
          commentId: ack.commentId,
          author: this.client.userId ?? "",
          content,
          ...options,
          timestamp: ack.timestamp ?? new Date().toISOString(),
        },
      ]);
    }
    return ack;
  }

  #merge(incoming: readonly FileComment[]): void {
    this.set((v) => {
      const merged = appendNew(v.comments, incoming, (c) => c.commentId);
      if (!merged) return v;
      const comments = merged.sort((a, b) => (a.commentId < b.commentId ? -1 : a.commentId > b.commentId ? 1 : 0));
      return { ...v, comments: comments.slice(0, MAX_COMMENTS) };
    });
  }
}

export interface UseFileComments extends FileCommentsView {
  post(content: string, options?: { position?: CommentPosition; parentCommentId?: string }): Promise<Ack>;
  loadMore(): Promise<void>;
}

/** A file's comments, live: what the seed's PDF annotation panel showed. */
export function useFileComments(fileId: string): UseFileComments {
  const { state, store } = useLiveStore(`comments:${fileId}`, (client) => new FileCommentsStore(client, fileId));
  return useMemo(
    () => ({
      ...state,
      post: (content: string, options?: { position?: CommentPosition; parentCommentId?: string }) => store.post(content, options),
      loadMore: () => store.loadMore(),
    }),
    [state, store],
  );
}
