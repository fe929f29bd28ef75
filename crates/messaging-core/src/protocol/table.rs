//! The macro behind the command tables of [`super`]: one line per frame `type` generates
//! everything that must agree about it.

/// Defines the commands one function handles, from a table of
/// `"WIRE_TYPE" => PayloadType` lines (optionally `, checked by validator`):
///
/// - the enum, one variant per line, named and typed after its payload type;
/// - `TYPE`, the frame `type` of each payload type, and `from_value`, which parses and
///   checks the payload of such a frame;
/// - the list of the function's frame types (for errors and the template's routes);
/// - `type_name` (the frame `type` of a command) and `from_frame` (the parse arms);
/// - a blanket [`Handle`](super::Handle) of the whole enum for any handler that handles every
///   payload type, which dispatches each variant to its own `Handle` impl. Forgetting a
///   handler is a compile error at the function that dispatches.
macro_rules! command_table {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident;
        $(#[$types_meta:meta])*
        types $types:ident;
        $(
            $(#[$line_meta:meta])*
            $wire:literal => $payload:ident $(, checked by $check:path)?;
        )+
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name {
            $( $(#[$line_meta])* $payload($payload), )+
        }

        $(#[$types_meta])*
        $vis const $types: &[&str] = &[ $($wire),+ ];

        $(
            impl $payload {
                /// The frame `type` of this command.
                pub const TYPE: &'static str = $wire;

                /// Parses and checks the payload of a frame of this `type` (the whole frame
                /// object).
                pub fn from_value(value: &serde_json::Value) -> Result<Self, $crate::ProtocolError> {
                    $crate::protocol::payload::<$payload>(value) $( .and_then($check) )?
                }
            }
        )+

        impl $name {
            /// The frame `type` this command came from.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( $name::$payload(_) => $wire, )+
                }
            }

            /// The command of a frame of type `kind` (the whole frame object is `value`), or
            /// `None` when this function has no command of that type.
            pub fn from_frame(
                kind: &str,
                value: &serde_json::Value,
            ) -> Option<Result<Self, $crate::ProtocolError>> {
                Some(match kind {
                    $( $wire => $payload::from_value(value).map($name::$payload), )+
                    _ => return None,
                })
            }
        }

        impl<H> $crate::protocol::Handle<$name> for H
        where
            H: Sync $( + $crate::protocol::Handle<$payload> )+,
        {
            async fn handle(&self, command: $name) -> $crate::protocol::Reply {
                match command {
                    $(
                        $name::$payload(payload) => {
                            <H as $crate::protocol::Handle<$payload>>::handle(self, payload).await
                        }
                    )+
                }
            }
        }
    };
}

pub(crate) use command_table;
