namespace Rx.Uhura;

/// <summary>What a client does with a send when its bounded queue of sends waiting for a link is full.</summary>
public enum QueueFullPolicy
{
    /// <summary>The new send fails at once with an <see cref="OutboundBufferFullException"/>; nothing queued is touched.</summary>
    Reject,

    /// <summary>
    /// The oldest queued send is dropped to make room: its task fails with an <see cref="OutboundBufferFullException"/>
    /// and it is reported on <see cref="UhuraClient.Dropped"/>.
    /// </summary>
    DropOldest,
}
