namespace Rx.Uhura.Scaleout;

/// <summary>
/// Carries <see cref="BackplaneMessage"/>s between the <see cref="UhuraServer"/>s of one deployment, so that
/// <see cref="UhuraServer.Broadcast"/> and <see cref="UhuraServer.SendTo"/> reach clients connected to any of them
/// (<see cref="UhuraServerOptions.Backplane"/>). Small enough to put over Redis pub/sub, NATS, PostgreSQL NOTIFY, ...
/// </summary>
/// <remarks>
/// A server calls <see cref="PublishAsync"/> for one message at a time, in order; an implementation should deliver one
/// publisher's messages in that order. Delivery may be at most once: a server that is down or not listening misses
/// what is published meanwhile. A publisher may receive its own messages; servers ignore those (by
/// <see cref="BackplaneMessage.Origin"/>).
/// </remarks>
public interface IUhuraBackplane
{
    /// <summary>
    /// Publishes <paramref name="message"/> to every server on the backplane. The task completes when the backplane took
    /// it (not when servers received it), and fails when it could not be published; the message is then lost.
    /// </summary>
    ValueTask PublishAsync(BackplaneMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every message published on the backplane (by any server, possibly including this one), one at a time. A
    /// subscriber must be quick: it holds up the backplane's receiving loop.
    /// </summary>
    IObservable<BackplaneMessage> Messages { get; }

    /// <summary>Failures the backplane noticed and recovers from on its own (a lost listening connection); servers report them on <see cref="UhuraServer.Errors"/>.</summary>
    IObservable<UhuraException> Errors { get; }
}
