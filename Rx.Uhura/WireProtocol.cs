namespace Rx.Uhura;

/// <summary>The wire a link speaks. A server accepts both on one endpoint and tells them apart by the first byte.</summary>
public enum WireProtocol
{
    /// <summary>Rx.Uhura's own protocol: length-prefixed binary frames, cumulative acks, resume in both directions, heartbeats (docs/PROTOCOL.md).</summary>
    Native,

    /// <summary>The wire of the Node package <c>uhura</c>: an endless JSON array, per-message acks; to talk to Node peers.</summary>
    NodeUhura,
}
