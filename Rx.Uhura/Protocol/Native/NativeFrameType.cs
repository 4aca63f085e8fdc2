namespace Rx.Uhura.Protocol.Native;

/// <summary>The type byte of a native frame (see <c>docs/PROTOCOL.md</c>, "Native protocol").</summary>
internal enum NativeFrameType : byte
{
    /// <summary>Client → server, first frame: version, requested features, session to resume.</summary>
    Hello = 1,

    /// <summary>Server → client, answer to <see cref="Hello"/>: granted features, session id, whether it resumed.</summary>
    Welcome = 2,

    /// <summary>An application event (sequenced): name and JSON arguments array.</summary>
    Event = 3,

    /// <summary>Session changes (sequenced): a JSON object of the keys set.</summary>
    Set = 4,

    /// <summary>Cumulative acknowledgement: every sequenced frame up to and including the sequence number was received.</summary>
    Ack = 5,

    /// <summary>Heartbeat or round-trip probe; answered by <see cref="Pong"/> with the same nonce.</summary>
    Ping = 6,

    /// <summary>Answer to <see cref="Ping"/>.</summary>
    Pong = 7,

    /// <summary>Graceful goodbye: the last frame its sender writes on the link.</summary>
    Close = 8,

    /// <summary>Server → client (sequenced): the session was invalidated.</summary>
    Invalidate = 9,
}
