namespace Rx.Uhura;

/// <summary>
/// A subscriber of one of Rx.Uhura's streams threw. The library caught it: the other subscribers of that stream still
/// got the notification, and no link was dropped. Reported on <see cref="UhuraServer.Errors"/> (server side) or
/// <see cref="UhuraClient.Errors"/> (client side), and logged when a logger is configured.
/// </summary>
public sealed class SubscriberException : UhuraException
{
    /// <summary>Creates the report of a throwing subscriber.</summary>
    public SubscriberException(string streamName, string? eventName, Exception innerException)
        : base(eventName is null
            ? $"A subscriber of {streamName} threw: {innerException.Message}"
            : $"A subscriber of {streamName} threw on event '{eventName}': {innerException.Message}", innerException)
    {
        StreamName = streamName;
        EventName = eventName;
    }

    /// <summary>The stream whose subscriber threw, e.g. <c>Connection.Events</c>, <c>UhuraClient.State</c>.</summary>
    public string StreamName { get; }

    /// <summary>The name of the event the subscriber threw on, when the stream carries events.</summary>
    public string? EventName { get; }
}
