namespace Rx.Uhura.Mesh;

/// <summary>Why a mesh handshake refused a connection.</summary>
public enum PeerRefusal
{
    /// <summary>The two nodes are already connected (connection de-duplication kept the other connection).</summary>
    Duplicate,

    /// <summary>The nodes are on different channels.</summary>
    ChannelMismatch,

    /// <summary>The node connected to itself.</summary>
    Self,

    /// <summary>The remote has <c>MaxPeers</c> peers already.</summary>
    Full,

    /// <summary>A different node than expected answered at a kept peer's address.</summary>
    UnexpectedNode,

    /// <summary>The remote does not speak the protocol or version (or broke the handshake).</summary>
    Protocol,

    /// <summary>The handshake did not finish within <c>HandshakeTimeout</c>.</summary>
    Timeout,
}

/// <summary>A mesh connection was refused during its handshake, by this node or by the remote.</summary>
public sealed class PeerRefusedException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public PeerRefusedException(PeerRefusal reason, string message, string? peerId = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
        PeerId = peerId;
    }

    /// <summary>Why.</summary>
    public PeerRefusal Reason { get; }

    /// <summary>The remote's node id, when it was learned.</summary>
    public string? PeerId { get; }
}
