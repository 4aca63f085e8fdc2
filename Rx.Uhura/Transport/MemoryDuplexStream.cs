using System.Buffers;
using System.IO.Pipelines;

namespace Rx.Uhura.Transport;

/// <summary>
/// One end of a <see cref="MemoryTransport"/> connection: reads from one pipe, writes to the other. One read and one
/// write may run at once (as on a socket). The pipe ends are completed only when no read or write is using them, so
/// disposing during a pending read or write wakes it instead of racing it.
/// </summary>
internal sealed class MemoryDuplexStream : Stream, ITransportStream
{
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Lock _gate = new();
    private bool _reading;
    private bool _writing;
    private bool _disposed;
    private bool _sendShutdown;
    private bool _inputCompleted;
    private bool _outputCompleted;
    private Exception? _abort;

    public MemoryDuplexStream(PipeReader input, PipeWriter output, string remoteAddress)
    {
        _input = input;
        _output = output;
        RemoteAddress = remoteAddress;
    }

    /// <summary>The name the connection was made to (<c>memory://name</c>); both ends describe it so.</summary>
    public string? RemoteAddress { get; }

    /// <summary>An in-memory peer is this process: no kernel credentials.</summary>
    public UnixPeerCredentials? PeerCredentials => null;

    public ValueTask ShutdownSendAsync()
    {
        ShutdownSend();
        return ValueTask.CompletedTask;
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_reading)
            {
                throw new InvalidOperationException("A read is already in progress on this stream.");
            }

            _reading = true;
        }

        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    // Only Dispose cancels a pending read.
                    lock (_gate)
                    {
                        ObjectDisposedException.ThrowIf(_disposed, this);
                    }

                    continue;
                }

                var available = result.Buffer;
                if (available.IsEmpty || buffer.Length == 0)
                {
                    _input.AdvanceTo(available.Start);
                    if (result.IsCompleted || buffer.Length == 0)
                    {
                        return 0; // the peer ended its sending side (or disposed its end)
                    }

                    continue;
                }

                var count = (int)Math.Min(available.Length, buffer.Length);
                var taken = available.Slice(0, count);
                taken.CopyTo(buffer.Span);
                _input.AdvanceTo(taken.End);
                return count;
            }
        }
        finally
        {
            bool complete;
            lock (_gate)
            {
                _reading = false;
                complete = _disposed && !_inputCompleted;
                _inputCompleted |= complete;
            }

            if (complete)
            {
                _input.Complete();
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_sendShutdown)
            {
                throw new IOException("The sending side of this stream was shut down.");
            }

            if (_writing)
            {
                throw new InvalidOperationException("A write is already in progress on this stream.");
            }

            _writing = true;
        }

        try
        {
            var result = await _output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new ObjectDisposedException(GetType().Name, "The stream was disposed during the write.");
            }

            if (result.IsCompleted)
            {
                throw new IOException("The peer closed the connection (broken pipe).");
            }
        }
        finally
        {
            CompleteOutputIfDone(leaving: true);
        }
    }

    /// <summary>Ends the sending side: the peer reads the end once it read what was written; this end can still read.</summary>
    public void ShutdownSend()
    {
        lock (_gate)
        {
            _sendShutdown = true;
        }

        CompleteOutputIfDone(leaving: false);
    }

    /// <summary>Ends the connection with an error: the peer's reads throw <paramref name="error"/>, its writes fail.</summary>
    public void Abort(IOException error)
    {
        lock (_gate)
        {
            _abort ??= error;
        }

        Dispose();
    }

    protected override void Dispose(bool disposing)
    {
        bool completeInput, cancelRead, cancelWrite;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            completeInput = !_reading && !_inputCompleted;
            _inputCompleted |= completeInput;
            cancelRead = _reading;
            cancelWrite = _writing;
        }

        if (completeInput)
        {
            _input.Complete(); // the peer's waiting and later writes see a completed reader
        }
        else if (cancelRead)
        {
            _input.CancelPendingRead();
        }

        if (cancelWrite)
        {
            _output.CancelPendingFlush();
        }

        CompleteOutputIfDone(leaving: false);
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask; // every write is flushed

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Completes the output once it is to end (shut down or disposed) and no write is using it.</summary>
    private void CompleteOutputIfDone(bool leaving)
    {
        Exception? error;
        lock (_gate)
        {
            if (leaving)
            {
                _writing = false;
            }

            if (_writing || _outputCompleted || !(_disposed || _sendShutdown))
            {
                return;
            }

            _outputCompleted = true;
            error = _abort;
        }

        _output.Complete(error);
    }
}
