namespace Rx.Uhura.Transport;

/// <summary>Ends the sending direction of a stream so the peer reads the end, while its data can still be read.</summary>
internal static class HalfClose
{
    /// <summary>A transport's stream half-closes as its transport does (<see cref="ITransportStream.ShutdownSendAsync"/>), a framework socket stream as its socket does; any other stream cannot, and is left as it is.</summary>
    public static async ValueTask SendAsync(Stream stream)
    {
        if (SocketFacts.Of(stream) is not { } transport)
        {
            return;
        }

        try
        {
            await transport.ShutdownSendAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            // a transport of the application's that throws although the contract says not to: the link ends anyway
        }
    }
}
