using Rx.Uhura.Internal;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>The read side's waits: back-pressure from the node's dispatcher, and the drain after a graceful close.</summary>
internal sealed partial class MeshLink
{
    /// <summary>Completes when the link starts closing (gracefully or not): a read loop waiting for room stops waiting.</summary>
    private readonly TaskCompletionSource _closingSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Back-pressure: the node's subscribers are slower than its peers and the dispatcher's queue is full, so the read
    /// loop waits before reading on; the peer's frames wait in the socket meanwhile (its bus events stay unacknowledged).
    /// False when the link started closing instead.
    /// </summary>
    async Task<bool> ILinkReadHandler.WhenRoomAsync(CancellationToken cancel)
    {
        var space = _node.WhenDeliverySpaceAsync();
        if (!space.IsCompleted)
        {
            await Task.WhenAny(space, _closingSignal.Task).ConfigureAwait(false);
        }

        return !IsClosing;
    }

    /// <summary>
    /// After a graceful half-close, reads and discards until the peer closes too (briefly): closing a socket with unread
    /// bytes sends a reset, which could destroy the last frames (a refusal) before the peer reads them.
    /// </summary>
    private async Task DrainAsync()
    {
        using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(2), _node.Time);
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(linger.Token).ConfigureAwait(false);
                _input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
        }
    }
}
