namespace Rx.Uhura;

/// <summary>What a link does when a peer reads too slowly and <see cref="ConnectionOptions.MaxOutboundBufferBytes"/> wait to be written to it.</summary>
public enum SlowConsumerPolicy
{
    /// <summary>
    /// The send that would exceed the bound fails with an <see cref="OutboundBufferFullException"/> (its task, <c>false</c>
    /// from <c>Post</c>, a <c>Broadcast</c> that reaches one client fewer); the link stays. The default.
    /// </summary>
    FailSend,

    /// <summary>
    /// The slow peer is disconnected: the link ends with <see cref="DisconnectReason.SlowConsumer"/> and a
    /// <see cref="SlowConsumerException"/> (on a server, also on <c>Errors</c>). What waited for it is handled as for any lost
    /// link (a server holds a native session's unacknowledged events for its resume).
    /// </summary>
    Disconnect,
}

/// <summary>A peer read too slowly: more than <see cref="ConnectionOptions.MaxOutboundBufferBytes"/> waited for it, and <see cref="SlowConsumerPolicy.Disconnect"/> ended its link.</summary>
public sealed class SlowConsumerException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public SlowConsumerException(string message) : base(message) { }
}
