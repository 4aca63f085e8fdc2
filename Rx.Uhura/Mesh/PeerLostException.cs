namespace Rx.Uhura.Mesh;

/// <summary>
/// A link to a peer ended without either node asking for it: the socket closed or failed, nothing arrived for
/// <see cref="UhuraNodeOptions.PeerTimeout"/>, no bus acknowledgement for <see cref="UhuraNodeOptions.InactivityTimeout"/>,
/// or too many bytes waited for a peer that did not read them. A kept peer is reconnected.
/// </summary>
public sealed class PeerLostException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public PeerLostException(string message, string? peerId = null, Exception? innerException = null) : base(message, innerException)
    {
        PeerId = peerId;
    }

    /// <summary>The peer, when it was identified.</summary>
    public string? PeerId { get; }
}
