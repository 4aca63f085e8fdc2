using System.Buffers;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>
    /// The Node uhura wire: one JSON array per direction, an element per message, in the legacy array form
    /// (<c>["name", ...args]</c>) or, once both sides agreed, the object form with an id that the peer acknowledges
    /// (<c>ack::id</c>). The handshake and session sync are the link's Node partials (<c>Connection.Handshake.cs</c>,
    /// <c>Connection.NodeSession.cs</c>), element handling is <c>Connection.Receive.cs</c>.
    /// </summary>
    private sealed class NodeWireHandler(Connection link) : WireHandler(link)
    {
        private readonly JsonArrayFramer _framer = new(link._options.MaxMessageSize);

        public override WireProtocol Protocol => WireProtocol.NodeUhura;

        public override void SendHello() => Link.SendClientHandshake();

        public override async ValueTask<ReadProgress> ReadAsync(ReadOnlySequence<byte> buffer)
        {
            var link = Link;
            var consumed = buffer.Start;
            var examined = buffer.Start;
            while (!link.HasEnded && _framer.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var element))
            {
                var pending = link.HandleNodeElement(element.ToArray());
                if (!pending.IsCompletedSuccessfully)
                {
                    link.SignalDeliveries(); // what this batch queued is delivered while the element's handling waits
                    await pending.ConfigureAwait(false);
                }
            }

            return new ReadProgress(consumed, examined);
        }

        /// <summary>Not the wire's own <c>connect</c> and <c>invalidateSession</c>.</summary>
        public override bool CountsAsEvent(string name) => IsApplicationEvent(name);

        public override void WriteEventLocked(OutboundMessage message)
        {
            var link = Link;
            var pending = link._outbox.Pending;
            link.WriteSeparatorLocked();
            if (!link._objectMode)
            {
                NodeWireCodec.WriteLegacy(pending, message.Payload);
                link._outbox.CompleteWhenWritten(message);
            }
            else if (link._acksEnabled)
            {
                if (message.Seq == 0)
                {
                    message.Seq = ++link._nextSeq;
                }

                link._inflight[message.Seq] = message;
                if (!IsApplicationEvent(message.Name))
                {
                    link._protocolInflight++;
                }

                NodeWireCodec.WriteObject(pending, message.Payload, link._idPrefixUtf8, message.Seq);
            }
            else
            {
                NodeWireCodec.WriteObject(pending, message.Payload, link._idPrefixUtf8, 0);
                link._outbox.CompleteWhenWritten(message);
            }

            link.ScheduleWriteLocked();
        }

        /// <summary>Ends the JSON array cleanly (<c>\n]\n</c>).</summary>
        public override void EndOutputLocked()
        {
            var link = Link;
            if (!link._wroteFirst)
            {
                link._outbox.Pending.Write(NodeWireCodec.OpenArray);
                link._wroteFirst = true;
            }

            link._outbox.Pending.Write(NodeWireCodec.CloseArray);
            link.Reach(LinkProgress.OutputEnded);
            link.ScheduleWriteLocked();
        }

        /// <summary>An <c>_unauthorized</c> element, then the end of the array.</summary>
        public override void WriteRefusalLocked(ushort nativeCode, string reason)
        {
            Link.WriteSeparatorLocked();
            NodeWireCodec.WriteLegacy(Link._outbox.Pending, NodeWireCodec.EncodePayload("_unauthorized", [new JObject { ["reason"] = reason }], Link._serializer));
            Link.EndOutputLocked();
        }

        public override void WriteInvalidationLocked()
            => Link.WriteMessageLocked(new OutboundMessage("invalidateSession", NodeWireCodec.EncodePayload("invalidateSession", [], Link._serializer, out var nameEnd), awaited: false, nameEnd));

        public override void SendSet(string key, JToken value)
        {
            Link.NoteSetDuringHandshake(key);
            Link.WriteInternal(NodeWireCodec.EncodePayload("_set", [key, value], Link._serializer));
        }

        public override void SendSetMany(JObject values)
        {
            foreach (var property in values.Properties())
            {
                Link.NoteSetDuringHandshake(property.Name);
            }

            Link.WriteInternal(NodeWireCodec.EncodePayload("_set", [values], Link._serializer));
        }
    }
}
