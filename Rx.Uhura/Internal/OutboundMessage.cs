namespace Rx.Uhura.Internal;

/// <summary>
/// One event on its way out: the encoded <c>["name", ...args]</c> payload (encoded once, reused by resends) and the
/// completion the sender awaits. Internal messages (the server's <c>connect</c>) have no completion.
/// </summary>
internal sealed class OutboundMessage
{
    public OutboundMessage(string name, byte[] payload, bool awaited)
    {
        Name = name;
        Payload = payload;
        Completion = awaited ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
    }

    public string Name { get; }

    public byte[] Payload { get; }

    public TaskCompletionSource? Completion { get; }

    /// <summary>The ack id of the current attempt (0 when none).</summary>
    public long AckId { get; set; }

    public void Succeed() => Completion?.TrySetResult();

    public void Fail(Exception error) => Completion?.TrySetException(error);
}
