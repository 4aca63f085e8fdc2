namespace Rx.Uhura.Transport;

/// <summary>Ends the sending direction of a stream so the peer reads the end, while its data can still be read.</summary>
internal static class HalfClose
{
    /// <summary>A transport's stream half-closes as its transport does (<see cref="ITransportStream.ShutdownSendAsync"/>), a framework socket stream as its socket does; any other stream cannot, and is left as it is.</summary>
    /// <returns>False when the half-close failed: the peer will not read the end, so waiting for its close is pointless.</returns>
    public static async ValueTask<bool> SendAsync(Stream stream)
    {
        if (SocketFacts.Of(stream) is not { } transport)
        {
            return true; // nothing to do: the wire's own end (a Close frame, the end of the JSON array) tells the peer
        }

        try
        {
            await transport.ShutdownSendAsync().ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A half-close is the last courtesy of a graceful close: a transport that fails it (an application's that
            // throws although the contract says not to, a TLS library refusing an alert on a dying link) must not turn
            // the close into an error. The link ends either way.
            return false;
        }
    }
}
