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

    /// <summary>
    /// The message's sequence number, assigned once by its owner (the client, for its sends; the connection otherwise)
    /// and kept when the message is resent on a new link, so the receiver can drop what it already delivered. 0 = not yet.
    /// </summary>
    public long Seq { get; set; }

    public void Succeed() => Completion?.TrySetResult();

    public void Fail(Exception error) => Completion?.TrySetException(error);
}
