using Rx.Uhura.Internal;

namespace Rx.Uhura.Internal;

/// <summary>What an <see cref="Outbox"/> asks of the link that owns it.</summary>
internal interface IOutboxOwner
{
    /// <summary>The link ended: nothing more is written (read under the owner's lock).</summary>
    bool OutboxClosed { get; }

    /// <summary>Under the owner's lock: <paramref name="written"/>, which waited for their write, were written (their accounting).</summary>
    void WrittenLocked(List<OutboundMessage> written);

    /// <summary>
    /// Outside every lock: a write of <paramref name="bytes"/> bytes ended well; <paramref name="written"/> are the
    /// messages that waited for it (completed by the owner). The list is the owner's to iterate now, not to keep.
    /// </summary>
    void Written(int bytes, List<OutboundMessage> written);

    /// <summary>Outside every lock: the socket refused a write; the writer stopped.</summary>
    void WriteFailed(Exception error);
}

/// <summary>
/// A link's outbound bytes and its one writer: senders append frames to <see cref="Pending"/> under the owner's lock;
/// the writer swaps that buffer with the one it writes, so every frame appended while a write is in flight goes out in
/// the next single write, and a lone frame goes out at once. Messages that complete when written (no acks) wait beside
/// the buffer that holds them. Inside a read batch (<see cref="BeginBatch"/>) the read loop's own writes (acks,
/// replies) are owed and written by the read loop when the batch ends, without a thread hop. An idle outbox holds no
/// pooled buffer. Every member but <see cref="BeginBatch"/>, <see cref="EndBatch"/>, <see cref="WriteOwed"/> and
/// <see cref="WhenDrainedAsync"/> is called under the owner's lock.
/// </summary>
internal sealed class Outbox(Lock gate, Stream stream, IOutboxOwner owner) : IThreadPoolWorkItem
{
    private PooledBufferWriter _pending = new();
    private PooledBufferWriter _writing = new();
    private List<OutboundMessage> _pendingWaiters = [];
    private List<OutboundMessage> _writingWaiters = [];
    private TaskCompletionSource? _drained;
    private bool _writerActive;
    private bool _writeOwed;
    private int _batchThread;

    /// <summary>Where the next frames go (a different buffer after each swap: read it afresh under the lock).</summary>
    public PooledBufferWriter Pending => _pending;

    /// <summary>Bytes waiting for the next write (not those being written).</summary>
    public int PendingBytes => _pending.WrittenCount;

    /// <summary>Bytes waiting or being written.</summary>
    public int BufferedBytes => _pending.WrittenCount + _writing.WrittenCount;

    /// <summary>Messages that complete once written and are not yet.</summary>
    public int WaitingForWrite => _pendingWaiters.Count + _writingWaiters.Count;

    /// <summary><paramref name="message"/> completes once the bytes appended so far are written.</summary>
    public void CompleteWhenWritten(OutboundMessage message) => _pendingWaiters.Add(message);

    /// <summary>
    /// Makes sure the writer runs. A writer goes to the thread pool's global queue by default, where an idle worker takes
    /// it at once; with <paramref name="preferLocal"/> (a broadcast) to the calling thread's local queue, where other
    /// workers steal it while the caller goes on and those still there carry more frames per write.
    /// </summary>
    public void Schedule(bool preferLocal = false)
    {
        if (_writerActive || owner.OutboxClosed)
        {
            return;
        }

        _writerActive = true;
        if (_batchThread == Environment.CurrentManagedThreadId)
        {
            _writeOwed = true; // the read loop writes it when its batch ends
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal); // the outbox is its own work item: no allocation per wake-up
    }

    /// <summary>The thread pool runs the writer (queued by <see cref="Schedule"/>, at most once at a time).</summary>
    void IThreadPoolWorkItem.Execute() => _ = WriteLoopAsync();

    /// <summary>The read loop starts a batch: writes scheduled on its thread are owed until <see cref="EndBatch"/>.</summary>
    public void BeginBatch()
    {
        lock (gate)
        {
            _batchThread = Environment.CurrentManagedThreadId;
        }
    }

    /// <summary>The read loop's batch ends; true when it owes a write, which it makes with <see cref="WriteOwed"/>.</summary>
    public bool EndBatch()
    {
        lock (gate)
        {
            _batchThread = 0;
            var owed = _writeOwed;
            _writeOwed = false;
            return owed;
        }
    }

    /// <summary>The read loop writes what its batch owed (after <see cref="EndBatch"/> returned true).</summary>
    public void WriteOwed() => _ = WriteLoopAsync();

    /// <summary>Completes once everything buffered was written, or at once when the link has ended.</summary>
    public Task WhenDrainedAsync()
    {
        lock (gate)
        {
            if (owner.OutboxClosed || (!_writerActive && _pending.WrittenCount == 0))
            {
                return Task.CompletedTask; // ended: what was not written never will be (the end completed any earlier waiter)
            }

            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drained.Task;
        }
    }

    /// <summary>The link ended: the messages that waited for a write are moved to <paramref name="into"/>; a drain waiter is released.</summary>
    public void TakeWaiters(List<OutboundMessage> into)
    {
        into.AddRange(_writingWaiters);
        into.AddRange(_pendingWaiters);
        _writingWaiters.Clear();
        _pendingWaiters.Clear();
        _drained?.TrySetResult();
        _drained = null;
    }

    private async Task WriteLoopAsync()
    {
        while (true)
        {
            lock (gate)
            {
                if (_pending.WrittenCount == 0 || owner.OutboxClosed)
                {
                    _writerActive = false;
                    _pending.Release(); // an idle link holds no buffer
                    _writing.Release();
                    _drained?.TrySetResult();
                    _drained = null;
                    return;
                }

                (_pending, _writing) = (_writing, _pending);
                if (_pendingWaiters.Count > 0)
                {
                    _writingWaiters = _pendingWaiters;
                    _pendingWaiters = [];
                }
            }

            try
            {
                await _writing.WriteToAsync(stream).ConfigureAwait(false);
                await stream.FlushAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or NotSupportedException)
            {
                lock (gate)
                {
                    _writerActive = false;
                    _drained?.TrySetException(ex);
                    _drained = null;
                }

                owner.WriteFailed(ex);
                return;
            }

            var bytes = _writing.WrittenCount;
            _writing.Reset();
            List<OutboundMessage> written;
            lock (gate)
            {
                written = _writingWaiters;
                if (written.Count > 0)
                {
                    _writingWaiters = [];
                    owner.WrittenLocked(written);
                }
            }

            owner.Written(bytes, written);
        }
    }
}
