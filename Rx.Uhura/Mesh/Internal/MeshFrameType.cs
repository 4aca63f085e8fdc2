namespace Rx.Uhura.Mesh.Internal;

/// <summary>The type byte of a native mesh frame (<c>docs/PROTOCOL.md</c>, "Mesh").</summary>
internal enum MeshFrameType : byte
{
    /// <summary>Dialer → listener, first frame: JSON <c>{"v","id","info","channel","inc"}</c>.</summary>
    Hello = 1,

    /// <summary>Listener → dialer: JSON <c>{"id","channel","inc","lost"}</c>.</summary>
    Welcome = 2,

    /// <summary>Dialer → listener, when the listener arbitrates: JSON <c>{"lost"}</c>.</summary>
    Claim = 3,

    /// <summary>Arbiter → other side: JSON <c>{"link"}</c>; the link is THE link between the two nodes.</summary>
    Confirm = 4,

    /// <summary>Either side, last frame of a refused handshake: JSON <c>{"code","reason"}</c>.</summary>
    Refuse = 5,

    /// <summary>One byte, 1 or 0: whether the sender keeps the link.</summary>
    Keep = 6,

    /// <summary>Empty: a heartbeat.</summary>
    Ping = 7,

    /// <summary>A JSON object: an application packet.</summary>
    Packet = 8,

    /// <summary>u64 big-endian: last bus sequence received from the peer; u8: 1 when it is a reconnection.</summary>
    Sync = 9,

    /// <summary>u64 big-endian bus sequence on this link, then JSON <c>{"o","n","s","p","e","a"}</c>.</summary>
    Bus = 10,

    /// <summary>u64 big-endian: every bus frame up to this sequence was received.</summary>
    Ack = 11,

    /// <summary>UTF-8 reason: the sender is closing the link on purpose.</summary>
    Close = 12,
}
