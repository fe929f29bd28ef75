import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";

type Show = (text: string, kind?: "error" | "info") => void;
const ToastContext = createContext<Show>(() => {});

/** One toast at a time, for five seconds. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toast, setToast] = useState<{ text: string; kind: string; n: number } | undefined>();
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const show = useCallback<Show>((text, kind = "error") => {
    setToast((t) => ({ text, kind, n: (t?.n ?? 0) + 1 }));
  }, []);
  useEffect(() => {
    clearTimeout(timer.current);
    if (toast) timer.current = setTimeout(() => setToast(undefined), 5000);
    return () => clearTimeout(timer.current);
  }, [toast]);
  return (
    <ToastContext.Provider value={show}>
      {children}
      <div id="toast" role="alert" data-testid="toast" className={toast ? `${toast.kind} show` : ""}>
        {toast?.text ?? ""}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): Show {
  return useContext(ToastContext);
}

/** `promise`, its failure shown as a toast (the server's code first). */
export function useReport() {
  const toast = useToast();
  return useCallback(
    <T,>(promise: Promise<T>): Promise<T | undefined> =>
      promise.catch((error: unknown) => {
        const e = error as { code?: string; message?: string };
        toast(e.code ? `${e.code}: ${e.message ?? ""}` : String(error));
        return undefined;
      }),
    [toast],
  );
}
