namespace Rx.Uhura;

/// <summary>A send was refused because the bounded outbound queue or buffer of the connection or client is full.</summary>
public sealed class OutboundBufferFullException : SendException
{
    /// <summary>Creates the error.</summary>
    public OutboundBufferFullException(string eventName, string detail) : base(eventName, $"Cannot send '{eventName}': {detail}") { }
}
