namespace Rx.Uhura.Internal;

/// <summary>
/// Counts down the takers of one received event (the subscribers of <c>UhuraServer.Events</c> it was queued for, and
/// the dispatcher that queued it); the last one acknowledges it to the peer. Acks stay in order even when takers finish
/// out of order (a drop under <see cref="SubscriberOverflowPolicy.DropNewest"/>, an unsubscribe): each countdown also
/// waits for the previous one of its link, since a native ack is cumulative.
/// </summary>
internal sealed class AckCountdown
{
    private static readonly AckCountdown Finished = new();

    private readonly Connection? _link;
    private readonly Delivery _delivery;
    private AckCountdown? _next;
    private int _left;

    private AckCountdown()
    {
    }

    /// <param name="link">The link that acknowledges it.</param>
    /// <param name="delivery">What to acknowledge at the end.</param>
    /// <param name="takers">How many queues took the event; the caller holds one more, released by its own <see cref="Signal"/>.</param>
    /// <param name="previous">The previous countdown of the same link, or null when it has none pending.</param>
    public AckCountdown(Connection link, in Delivery delivery, int takers, AckCountdown? previous)
    {
        _link = link;
        _delivery = delivery;
        _left = takers + 2; // the takers, the caller, and the previous countdown's end
        if (previous is null || Interlocked.CompareExchange(ref previous._next, this, null) is not null)
        {
            Signal(); // nothing before it is pending (or it just ended)
        }
    }

    /// <summary>True once this event was acknowledged.</summary>
    public bool IsDone => ReferenceEquals(Volatile.Read(ref _next), Finished);

    /// <summary>One taker is done with the event.</summary>
    public void Signal()
    {
        if (Interlocked.Decrement(ref _left) != 0)
        {
            return;
        }

        _link?.Acknowledge(_delivery, flush: true); // the finished marker has none

        var next = Interlocked.Exchange(ref _next, Finished);
        next?.Signal();
    }
}
