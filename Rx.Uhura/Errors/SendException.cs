namespace Rx.Uhura;

/// <summary>
/// An event could not be delivered. The event name (the topic, for topic protocols) says which.
/// (socket-ipc calls this <c>SendError</c>.)
/// </summary>
public class SendException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public SendException(string eventName, string message, Exception? innerException = null) : base(message, innerException)
    {
        EventName = eventName;
    }

    /// <summary>The name of the event (or topic) that was not delivered.</summary>
    public string EventName { get; }

    /// <summary>
    /// The arguments that were being sent, as their JSON array (socket-ipc's <c>sentMessage</c> is its one element);
    /// null when they were never encoded (an <see cref="EncodeException"/>).
    /// </summary>
    public string? ArgumentsJson { get; internal set; }
}
