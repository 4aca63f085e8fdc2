using System.Buffers;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;

namespace Rx.Uhura;

// The seam between the link's engine and the wire it speaks.
public sealed partial class Connection
{
    /// <summary>
    /// The wire a link speaks, plugged into its engine. The engine (the read loop, the outbox and its single writer,
    /// acknowledgement tracking, the heartbeat, the dispatcher, the session stream) never asks which wire it runs; it
    /// calls this handler for what only the wire knows: the handshake's first element, how bytes read become events,
    /// how an event, a session change, a refusal or the end of output is written. One per link, made as soon as the wire
    /// is known: at once on a client (and on a socket-ipc server), from the first byte read on a server that accepts
    /// both uhura wires.
    /// </summary>
    /// <remarks>
    /// Handlers are nested in <see cref="Connection"/> because the per-wire code they call (the native stream, the Node
    /// wire's handshake and session sync) works on the link's own state under its lock. Methods ending in <c>Locked</c>
    /// are called with the link's lock held and never run application code.
    /// </remarks>
    private abstract class WireHandler(Connection link)
    {
        /// <summary>The link this handler speaks for.</summary>
        protected Connection Link { get; } = link;

        /// <summary>Which wire this is.</summary>
        public abstract WireProtocol Protocol { get; }

        /// <summary>Whether the link needs a handshake before it is ready (socket-ipc has none: ready at once).</summary>
        public virtual bool HasHandshake => true;

        /// <summary>Client: writes the handshake's first element (called once, as the link starts).</summary>
        public abstract void SendHello();

        /// <summary>
        /// Handles one read's bytes: parses what is complete, handles or queues each frame for delivery, and returns how
        /// far it consumed and examined. Called by the read loop only, one call at a time, inside a read batch.
        /// </summary>
        public abstract ValueTask<ReadProgress> ReadAsync(ReadOnlySequence<byte> buffer);

        /// <summary>Whether a send by this name is an application event for the <c>uhura.events.sent</c> counter.</summary>
        public virtual bool CountsAsEvent(string name) => true;

        /// <summary>Encodes an accepted application event into the outbox (its bytes are counted held already).</summary>
        public abstract void WriteEventLocked(OutboundMessage message);

        /// <summary>Writes what ends this side's output cleanly; nothing may be written after it.</summary>
        public abstract void EndOutputLocked();

        /// <summary>Server: writes the refusal of a client at the handshake and ends the output.</summary>
        public abstract void WriteRefusalLocked(ushort nativeCode, string reason);

        /// <summary>Server: tells the client its session was invalidated.</summary>
        public abstract void WriteInvalidationLocked();

        /// <summary>Sends one local session change to the peer (called by the session, outside the link's lock).</summary>
        public abstract void SendSet(string key, JToken value);

        /// <summary>Sends several local session changes at once (outside the link's lock).</summary>
        public abstract void SendSetMany(JObject values);

        /// <summary>Whether a server's send on this link follows the session to its next link when this one ended.</summary>
        public virtual bool FollowsSession => false;

        /// <summary>The handler of <paramref name="protocol"/> for <paramref name="link"/>.</summary>
        public static WireHandler For(Connection link, WireProtocol protocol) => protocol switch
        {
            WireProtocol.Native => new NativeWireHandler(link),
            WireProtocol.SocketIpc => new SocketIpcWireHandler(link),
            _ => new NodeWireHandler(link),
        };
    }
}
