//! The reads over the socket: each answers with what [`crate::reads`] finds for the caller.

use messaging_core::protocol::{
    GetHistory, GetPresence, GetThread, Handle, ListConversations, Reply, Search,
};

use super::RouteService;
use crate::reads::{self, Reads};
use crate::websocket::Call;

impl Call<'_, RouteService> {
    fn reads(&self) -> Reads<'_> {
        Reads {
            table: &self.service.table,
            cursors: &self.service.cursors,
        }
    }
}

impl Handle<ListConversations> for Call<'_, RouteService> {
    async fn handle(&self, list: ListConversations) -> Reply {
        reads::list_conversations(self.reads(), self.principal(), list, self.request_id())
            .await
            .map(Some)
    }
}

impl Handle<GetHistory> for Call<'_, RouteService> {
    async fn handle(&self, history: GetHistory) -> Reply {
        reads::history(self.reads(), self.principal(), history, self.request_id())
            .await
            .map(Some)
    }
}

impl Handle<GetThread> for Call<'_, RouteService> {
    async fn handle(&self, thread: GetThread) -> Reply {
        reads::thread(self.reads(), self.principal(), thread, self.request_id())
            .await
            .map(Some)
    }
}

impl Handle<Search> for Call<'_, RouteService> {
    async fn handle(&self, search: Search) -> Reply {
        reads::search(self.reads(), self.principal(), search, self.request_id())
            .await
            .map(Some)
    }
}

impl Handle<GetPresence> for Call<'_, RouteService> {
    async fn handle(&self, presence: GetPresence) -> Reply {
        reads::presence(self.reads(), self.principal(), presence, self.request_id())
            .await
            .map(Some)
    }
}
