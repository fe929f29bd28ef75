import { useRef, useState, type FormEvent } from "react";
import type { FileEntry } from "@stackpro/messaging-client";
import { useConversation, useFileComments, useFiles } from "@stackpro/messaging-react";
import type { Me } from "./app.js";
import { useReport, useToast } from "./toast.js";

export function FilesPanel({ me, conversationId }: { me: Me; conversationId: string | undefined }) {
  const files = useFiles();
  const report = useReport();
  const toast = useToast();
  const input = useRef<HTMLInputElement>(null);
  const [open, setOpen] = useState<string | undefined>();
  const upload = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const file = input.current?.files?.[0];
    if (!file) {
      toast("Choose a file first");
      return;
    }
    event.currentTarget.reset();
    // Registered, then the bytes go straight to the bucket through the presigned PUT.
    const entry = await report(files.upload(file));
    if (entry) {
      setOpen(entry.fileId);
      toast(`Uploaded ${entry.name}`, "info");
    }
  };
  const current = files.files.find((f) => f.fileId === open);
  return (
    <div id="tab-files" className="tab">
      <form className="stacked" onSubmit={(e) => void upload(e)}>
        <input type="file" ref={input} data-testid="file-input" />
        <button data-testid="file-upload">Upload and register</button>
      </form>
      <ul id="files" data-testid="files">
        {files.files.map((f) => (
          <li key={f.fileId} data-testid="file" className={f.fileId === open ? "active" : ""} onClick={() => setOpen(f.fileId)}>
            {f.name} ({f.owner})
          </li>
        ))}
      </ul>
      {files.hasMore && (
        <button type="button" onClick={() => void report(files.loadMore())}>
          More files
        </button>
      )}
      {current && <FileDetail key={current.fileId} me={me} file={current} conversationId={conversationId} />}
    </div>
  );
}

function FileDetail({ me, file, conversationId }: { me: Me; file: FileEntry; conversationId: string | undefined }) {
  const files = useFiles();
  const comments = useFileComments(file.fileId);
  const report = useReport();
  const toast = useToast();
  const p = file.permissions;
  const comment = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const content = String(data.get("content") ?? "");
    const page = Number(data.get("page") || 0);
    if (!content.trim()) return;
    form.reset();
    await report(comments.post(content, page > 0 ? { position: { page, x: 0.5, y: 0.5 } } : {}));
  };
  const share = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const user = String(data.get("user") ?? "").trim();
    if (!user) return;
    const permissions = { read: data.get("read") === "on", comment: data.get("comment") === "on", edit: data.get("edit") === "on", download: data.get("download") === "on" };
    form.reset();
    if (await report(files.share(file.fileId, user, permissions))) toast(`Shared ${file.name}`, "info");
  };
  const download = async () => {
    const url = await report(files.downloadUrl(file.fileId));
    if (url) window.open(url.url, "_blank", "noopener");
  };
  return (
    <div id="file-detail">
      <h3 data-testid="file-name">{file.name}</h3>
      <p className="hint" data-testid="file-permissions">
        You may: {(["read", "comment", "edit", "download"] as const).filter((k) => p[k]).join(", ")}
      </p>
      {p.download && (
        <button type="button" data-testid="file-download" onClick={() => void download()}>
          Download
        </button>
      )}
      <ol id="file-comments" data-testid="file-comments">
        {comments.comments.map((c) => (
          <li key={c.commentId} data-testid="file-comment">
            {(typeof c.authorName === "string" ? c.authorName : undefined) ?? c.author}
            {c.position?.page ? ` (page ${c.position.page})` : ""}: {c.content}
          </li>
        ))}
      </ol>
      {p.comment && (
        <form className="stacked" onSubmit={(e) => void comment(e)}>
          <textarea name="content" rows={2} placeholder="Comment on this file" data-testid="file-comment-text" />
          <label className="row">
            Page <input name="page" type="number" min="1" placeholder="—" data-testid="file-comment-page" />
          </label>
          <button data-testid="file-comment-send">Comment</button>
        </form>
      )}
      {conversationId && (file.owner === me.user || me.role !== "USER") && <PostFile file={file} conversationId={conversationId} />}
      {(file.owner === me.user || me.role !== "USER") && (
        <form className="stacked" onSubmit={(e) => void share(e)}>
          <input name="user" placeholder="share with user id" data-testid="share-user" />
          <label className="row">
            <input type="checkbox" name="read" defaultChecked data-testid="share-read" /> read
          </label>
          <label className="row">
            <input type="checkbox" name="comment" data-testid="share-comment" /> comment
          </label>
          <label className="row">
            <input type="checkbox" name="edit" data-testid="share-edit" /> edit
          </label>
          <label className="row">
            <input type="checkbox" name="download" data-testid="share-download" /> download
          </label>
          <button data-testid="share-go">Share</button>
        </form>
      )}
    </div>
  );
}

/** Posts the file into the open conversation: its members may read it, and download it if ticked. */
function PostFile({ file, conversationId }: { file: FileEntry; conversationId: string }) {
  const chat = useConversation(conversationId);
  const report = useReport();
  const toast = useToast();
  const post = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const download = new FormData(event.currentTarget).get("download") === "on";
    const type = file.mimeType.startsWith("image/") ? "image" : "file";
    if (await report(chat.send({ type, text: "", attachments: [{ fileId: file.fileId, download }] }))) toast(`Posted ${file.name}`, "info");
  };
  return (
    <form className="stacked" onSubmit={(e) => void post(e)}>
      <label className="row">
        <input type="checkbox" name="download" data-testid="post-file-download" /> members may download
      </label>
      <button data-testid="post-file">Post into {conversationId}</button>
    </form>
  );
}
