namespace Rx.Uhura;

/// <summary>
/// What <see cref="UhuraServer.Events"/> does when one subscriber's own queue (<see cref="UhuraServerOptions.EventsQueueCapacity"/>)
/// is full because that subscriber is slower than the events arrive.
/// </summary>
public enum SubscriberOverflowPolicy
{
    /// <summary>
    /// The connection that delivers the next event waits until the slow subscriber made room (back-pressure on that
    /// connection only; other connections go on until they, too, have an event for the full queue).
    /// </summary>
    Wait,

    /// <summary>
    /// The event is not queued for that subscriber (the others still get it, and it is acknowledged); each drop is reported on
    /// <see cref="UhuraServer.Errors"/> as a <see cref="SubscriberOverflowException"/>.
    /// </summary>
    DropNewest,

    /// <summary>
    /// That subscriber's subscription ends: it gets what was queued, then <c>OnError</c> with a
    /// <see cref="SubscriberOverflowException"/>, which is also reported on <see cref="UhuraServer.Errors"/>.
    /// </summary>
    Fail,
}
