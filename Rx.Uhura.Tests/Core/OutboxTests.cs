using System.Text;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The outbox both link engines write through (<see cref="Connection"/> and the mesh link): one writer, frames appended
/// while a write is in flight go out together in the next write, messages that complete on write complete after their
/// bytes were written, the read loop's batch writes on its own thread, a failed write reaches the owner once, and an
/// idle or ended outbox holds nothing.
/// </summary>
public sealed class OutboxTests
{
    private readonly Lock _gate = new();
    private readonly GatedStream _stream = new();
    private readonly Owner _owner = new();
    private readonly Outbox _outbox;

    public OutboxTests() => _outbox = new Outbox(_gate, _stream, _owner);

    [Fact]
    public async Task Frames_appended_while_a_write_is_in_flight_go_out_together_in_the_next_write()
    {
        Append("a");
        var first = await _stream.NextWrite.For(); // the writer is now inside its first write, held by the stream
        Append("b");
        Append("c");
        Append("d");
        first.Release();
        var second = await _stream.NextWrite.For();
        second.Release();
        await _outbox.WhenDrainedAsync().For();

        Assert.Equal(["a", "bcd"], _stream.Writes);
        Assert.Equal([1, 3], _owner.WrittenBytes);
    }

    [Fact]
    public async Task A_message_that_completes_on_write_completes_only_after_its_bytes_were_written()
    {
        var message = new OutboundMessage("e", Encoding.UTF8.GetBytes("[\"e\"]"), awaited: true, nameEnd: 4);
        lock (_gate)
        {
            _outbox.Pending.Write("x"u8);
            _outbox.CompleteWhenWritten(message);
            Assert.Equal(1, _outbox.WaitingForWrite);
            _outbox.Schedule();
        }

        var write = await _stream.NextWrite.For();
        Assert.Empty(_owner.Completed); // in flight, not written yet
        write.Release();
        await _outbox.WhenDrainedAsync().For();

        Assert.Equal(["e"], _owner.Completed);
        Assert.Equal(["e"], _owner.AccountedUnderLock);
        lock (_gate)
        {
            Assert.Equal(0, _outbox.WaitingForWrite);
        }
    }

    [Fact]
    public async Task The_read_loops_batch_owes_its_writes_and_makes_them_itself_when_it_ends()
    {
        _outbox.BeginBatch();
        Append("ack1");
        Append("ack2");
        Assert.False(_stream.HasArrived); // nothing scheduled on the pool: the batch owes it
        Assert.True(_outbox.EndBatch());
        _outbox.WriteOwed();
        (await _stream.NextWrite.For()).Release();
        await _outbox.WhenDrainedAsync().For();

        Assert.Equal(["ack1ack2"], _stream.Writes);
        Assert.False(_outbox.EndBatch()); // nothing owed any more
    }

    [Fact]
    public async Task A_failed_write_reaches_the_owner_once_and_fails_a_drain_that_waited_for_it()
    {
        Append("a");
        var write = await _stream.NextWrite.For();
        var drained = _outbox.WhenDrainedAsync();
        write.Fail(new IOException("reset by the test"));

        await Assert.ThrowsAsync<IOException>(() => drained.For());
        await _owner.Failed.For();
        Assert.Equal(["reset by the test"], _owner.Failures);
    }

    [Fact]
    public async Task An_ended_owner_stops_the_writer_and_its_waiters_move_to_the_caller()
    {
        var message = new OutboundMessage("e", Encoding.UTF8.GetBytes("[\"e\"]"), awaited: true, nameEnd: 4);
        Append("a");
        var write = await _stream.NextWrite.For();
        lock (_gate)
        {
            _outbox.Pending.Write("b"u8);
            _outbox.CompleteWhenWritten(message);
            _owner.Closed = true;
            var taken = new List<OutboundMessage>();
            _outbox.TakeWaiters(taken);
            Assert.Same(message, Assert.Single(taken));
        }

        write.Release();
        await _outbox.WhenDrainedAsync().For(); // at once: an ended outbox writes nothing more
        Assert.Equal(["a"], _stream.Writes);
        Assert.Empty(_owner.Completed);
    }

    [Fact]
    public async Task An_idle_outbox_releases_its_buffers()
    {
        _stream.AutoRelease = true; // a large buffer may go out in several writes
        Append(new string('z', 100_000));
        await _outbox.WhenDrainedAsync().For();
        await _owner.WhenWrittenAsync(1).For();
        lock (_gate)
        {
            Assert.Equal(0, _outbox.BufferedBytes);
        }

        Append("after");
        await _outbox.WhenDrainedAsync().For();
        Assert.Equal("after", _stream.Writes[^1]);
    }

    private void Append(string text)
    {
        lock (_gate)
        {
            _outbox.Pending.Write(Encoding.UTF8.GetBytes(text));
            _outbox.Schedule();
        }
    }

    private sealed class Owner : IOutboxOwner
    {
        private readonly Lock _lock = new();
        private TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Closed { get; set; }

        public List<int> WrittenBytes { get; } = [];

        public List<string> Completed { get; } = [];

        public List<string> AccountedUnderLock { get; } = [];

        public List<string> Failures { get; } = [];

        private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Failed => _failed.Task;

        public bool OutboxClosed => Closed;

        public Task WhenWrittenAsync(int writes)
        {
            lock (_lock)
            {
                return WrittenBytes.Count >= writes ? Task.CompletedTask : _written.Task;
            }
        }

        public void WrittenLocked(List<OutboundMessage> written)
        {
            lock (_lock)
            {
                AccountedUnderLock.AddRange(written.Select(m => m.Name));
            }
        }

        public void Written(int bytes, List<OutboundMessage> written)
        {
            lock (_lock)
            {
                WrittenBytes.Add(bytes);
                Completed.AddRange(written.Select(m => m.Name));
                _written.TrySetResult();
                _written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        public void WriteFailed(Exception error)
        {
            lock (_lock)
            {
                Failures.Add(error.Message);
            }

            _failed.TrySetResult();
        }
    }

    /// <summary>A stream whose every write waits for the test to release (or fail) it, recording what was written.</summary>
    private sealed class GatedStream : DelegatingStream
    {
        private readonly Lock _lock = new();
        private readonly System.Threading.Channels.Channel<PendingWrite> _arrived = System.Threading.Channels.Channel.CreateUnbounded<PendingWrite>();

        public GatedStream()
            : base(Null)
        {
        }

        public List<string> Writes { get; } = [];

        /// <summary>Every write completes at once.</summary>
        public bool AutoRelease { get; set; }

        /// <summary>The oldest write that arrived and was not taken yet (or the next to arrive).</summary>
        public Task<PendingWrite> NextWrite => _arrived.Reader.ReadAsync().AsTask();

        /// <summary>Whether a write arrived that was not taken yet.</summary>
        public bool HasArrived => _arrived.Reader.Count > 0;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var pending = new PendingWrite();
            if (AutoRelease)
            {
                pending.Release();
            }

            lock (_lock)
            {
                Writes.Add(Encoding.UTF8.GetString(buffer.Span));
            }

            if (!AutoRelease)
            {
                _arrived.Writer.TryWrite(pending);
            }

            await pending.Done.Task.ConfigureAwait(false);
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class PendingWrite
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => Done.TrySetResult();

        public void Fail(Exception error) => Done.TrySetException(error);
    }
}
