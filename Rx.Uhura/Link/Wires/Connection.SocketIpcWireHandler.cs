using System.Buffers;
using System.Runtime.InteropServices;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>
    /// The socket-ipc wire: no handshake, no session, no acks, no dedupe; each message is a topic and one JSON message
    /// (or what the configured transcoder makes of it), written and done.
    /// </summary>
    private sealed class SocketIpcWireHandler(Connection link) : WireHandler(link)
    {
        private SocketIpcMessageReader? _reader;

        public override WireProtocol Protocol => WireProtocol.SocketIpc;

        public override bool HasHandshake => false;

        public override void SendHello()
        {
            // No handshake: the link is ready as it starts.
        }

        /// <summary>
        /// Delivers each message as an event named by its topic with the message as its one argument (none when the frame
        /// has no message).
        /// </summary>
        public override ValueTask<ReadProgress> ReadAsync(ReadOnlySequence<byte> buffer)
        {
            var link = Link;
            var options = link._options;
            var reader = _reader ??= new SocketIpcMessageReader(options.SocketIpcTranscoder, options.MaxMessageSize, options.MaxJsonDepth, link.Names);
            var consumed = buffer.Start;
            var examined = buffer.Start;
            while (!link.HasEnded && reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var message))
            {
                UhuraEvent e;
                if (message.MessageJson is { } json)
                {
                    var bytes = MemoryMarshal.TryGetArray(json, out var segment) ? segment : new ArraySegment<byte>(json.ToArray());
                    e = new UhuraEvent(message.Topic, bytes.Array!, bytes.Offset, bytes.Count, skip: -1, options.MaxJsonDepth, 0, null, link);
                }
                else
                {
                    e = new UhuraEvent(message.Topic, [], null, link);
                }

                if (!link.HasEnded)
                {
                    link.Dispatch(e, null, 0);
                }
            }

            return new ValueTask<ReadProgress>(new ReadProgress(consumed, examined));
        }

        public override void WriteEventLocked(OutboundMessage message)
        {
            var pending = Link._outbox.Pending;
            if (Link._options.SocketIpcTranscoder is { } transcoder && transcoder is not JsonSocketIpcTranscoder)
            {
                transcoder.Encode(message.Name, message.ArgumentsBody, message.HasArguments, pending);
            }
            else
            {
                SocketIpcCodec.Write(pending, message);
            }

            Link._outbox.CompleteWhenWritten(message); // no acks: done once written
            Link.ScheduleWriteLocked();
        }

        public override void EndOutputLocked()
        {
            Link.Reach(LinkProgress.OutputEnded); // nothing marks the end: the half-close does
            Link.ScheduleWriteLocked();
        }

        public override void WriteRefusalLocked(ushort nativeCode, string reason) => EndOutputLocked(); // no handshake to refuse

        public override void WriteInvalidationLocked()
        {
            // No session to invalidate.
        }

        public override void SendSet(string key, JToken value)
        {
            // No session: it stays on this side.
        }

        public override void SendSetMany(JObject values)
        {
        }
    }
}
