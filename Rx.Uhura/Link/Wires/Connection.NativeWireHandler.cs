using System.Buffers;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>
    /// The native wire: binary frames after a preface, session-ordered events numbered by the session's stream, Hello and
    /// Welcome, acks by sequence number, resume. The frame handling itself is the link's native partial
    /// (<c>Connection.Native*.cs</c>), which works on the session stream under its gates.
    /// </summary>
    private sealed class NativeWireHandler(Connection link) : WireHandler(link)
    {
        public override WireProtocol Protocol => WireProtocol.Native;

        public override void SendHello() => Link.SendNativeHello();

        public override ValueTask<ReadProgress> ReadAsync(ReadOnlySequence<byte> buffer) => Link.ReadNativeAsync(buffer);

        public override void WriteEventLocked(OutboundMessage message)
        {
            Link.WriteNativeEventLocked(message);
            Link.ScheduleWriteLocked();
        }

        public override void EndOutputLocked()
        {
            if (Link.HandshakeDone)
            {
                NativeFrameWriter.WriteClose(Link._outbox.Pending, NativeCloseCodes.Normal, string.Empty);
            }

            Link.Reach(LinkProgress.OutputEnded);
            Link.ScheduleWriteLocked();
        }

        public override void WriteRefusalLocked(ushort nativeCode, string reason)
        {
            Link._outbox.Pending.Write(NativePreface.Bytes);
            NativeFrameWriter.WriteClose(Link._outbox.Pending, nativeCode, reason);
            Link._wroteFirst = true;
            Link.Reach(LinkProgress.OutputEnded);
        }

        public override void WriteInvalidationLocked()
        {
            NativeFrameWriter.WriteInvalidate(Link._outbox.Pending, 0);
            Link.ScheduleWriteLocked();
        }

        public override void SendSet(string key, JToken value) => Link.WriteNativeSet(new JObject { [key] = value });

        public override void SendSetMany(JObject values) => Link.WriteNativeSet(values);

        public override bool FollowsSession => true;
    }
}
