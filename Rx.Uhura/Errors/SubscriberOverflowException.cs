namespace Rx.Uhura;

/// <summary>
/// A subscriber of <see cref="UhuraServer.Events"/> fell a whole queue behind (<see cref="UhuraServerOptions.EventsQueueCapacity"/>)
/// and, by <see cref="UhuraServerOptions.EventsOverflowPolicy"/>, an event was dropped for it or its subscription failed.
/// </summary>
public sealed class SubscriberOverflowException : UhuraException
{
    /// <summary>Creates the report.</summary>
    public SubscriberOverflowException(string message, string? eventName, SubscriberOverflowPolicy policy) : base(message)
    {
        EventName = eventName;
        Policy = policy;
    }

    /// <summary>The event that did not fit.</summary>
    public string? EventName { get; }

    /// <summary>The policy that applied.</summary>
    public SubscriberOverflowPolicy Policy { get; }
}
