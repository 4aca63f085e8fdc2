using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The read loop every link runs (<see cref="Connection"/> on its three wires and the mesh link on its two): what it
/// hands the link's handler, how it releases what was handled, its back-pressure wait with the peer's silence not
/// counted, and how each way of ending is reported. Driven over an in-memory pipe with a scripted handler.
/// </summary>
public sealed class LinkReaderTests
{
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0));
    private readonly TestScheduler _scheduler = new();
    private readonly Handler _handler;

    public LinkReaderTests() => _handler = new Handler(new Liveness(new SchedulerTimeProvider(_scheduler)));

    [Fact]
    public async Task What_the_handler_leaves_unconsumed_is_handed_to_it_again_with_the_next_bytes()
    {
        var reading = Run();
        await Write("ab|cd");
        await Write("e|");
        _pipe.Writer.Complete();
        var end = await reading.For();

        Assert.Equal(["ab", "cde"], _handler.Messages);
        Assert.Equal(ReadEndKind.PeerClosed, end.Kind);
        Assert.Equal(0, end.Unconsumed);
    }

    [Fact]
    public async Task A_peer_that_closes_in_the_middle_of_a_message_leaves_its_bytes_counted_as_unconsumed()
    {
        var reading = Run();
        await Write("ab|cde");
        _pipe.Writer.Complete();
        var end = await reading.For();

        Assert.Equal(["ab"], _handler.Messages);
        Assert.Equal(new ReadEnd(ReadEndKind.PeerClosed, null, 3), end);
    }

    [Fact]
    public async Task The_handler_stops_the_loop_and_the_bytes_after_its_stop_are_not_read()
    {
        var reading = Run();
        await Write("ab|stop|cd|");
        var end = await reading.For();

        Assert.Equal(["ab", "stop"], _handler.Messages);
        Assert.Equal(ReadEndKind.Stopped, end.Kind);
        Assert.Equal(3, end.Unconsumed);
    }

    [Theory]
    [InlineData("protocol", nameof(ReadEndKind.Protocol))]
    [InlineData("io", nameof(ReadEndKind.Transport))]
    [InlineData("bug", nameof(ReadEndKind.Unexpected))]
    public async Task Each_kind_of_failure_is_reported_with_its_exception(string message, string kind)
    {
        var expected = Enum.Parse<ReadEndKind>(kind);
        var reading = Run();
        await Write(message + "|");
        var end = await reading.For();

        Assert.Equal(expected, end.Kind);
        Assert.IsType(expected switch { ReadEndKind.Protocol => typeof(ProtocolException), ReadEndKind.Transport => typeof(IOException), _ => typeof(InvalidOperationException) }, end.Error);
    }

    [Fact]
    public async Task Cancelling_the_token_ends_the_loop_as_cancelled()
    {
        using var cancel = new CancellationTokenSource();
        var reading = LinkReader.RunAsync(_pipe.Reader, _handler, null, cancel.Token);
        await cancel.CancelAsync();

        Assert.Equal(new ReadEnd(ReadEndKind.Canceled), await reading.For());
    }

    [Fact]
    public async Task A_read_notes_the_peer_alive_only_when_it_brings_new_bytes()
    {
        var reading = Run();
        _scheduler.AdvanceBy(TimeSpan.FromSeconds(5).Ticks);
        await Write("ab|c");
        Assert.Equal(TimeSpan.FromSeconds(5).Ticks, _handler.Liveness!.LastRead);

        _scheduler.AdvanceBy(TimeSpan.FromSeconds(5).Ticks);
        await Write("d|");
        Assert.Equal(TimeSpan.FromSeconds(10).Ticks, _handler.Liveness!.LastRead);

        _scheduler.AdvanceBy(TimeSpan.FromSeconds(5).Ticks);
        _pipe.Writer.Complete(); // the last read brings no byte
        await reading.For();
        Assert.Equal(TimeSpan.FromSeconds(10).Ticks, _handler.Liveness!.LastRead);
    }

    [Fact]
    public async Task While_deliveries_are_full_the_loop_waits_for_room_with_the_peers_silence_not_counted()
    {
        _handler.Full = true;
        var reading = Run();
        await Write("ab|");
        var wait = await _handler.RoomAsked.Task.For();
        Assert.True(_handler.Liveness!.IsSuspended);
        _scheduler.AdvanceBy(TimeSpan.FromMinutes(1).Ticks); // a minute of the peer's silence while the loop does not read
        Assert.NotEqual(LivenessVerdict.PeerSilent, _handler.Liveness.Check(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)));

        await Write("cd|"); // arrives while the loop waits: not read until there is room
        Assert.Equal(["ab"], _handler.Messages);

        _handler.Full = false;
        wait.SetResult(true);
        await _handler.Handled(2).For();
        Assert.False(_handler.Liveness.IsSuspended);
        Assert.Equal(["ab", "cd"], _handler.Messages);

        _pipe.Writer.Complete();
        await reading.For();
    }

    [Fact]
    public async Task A_liveness_made_while_the_loop_waits_for_room_is_resumed_when_reading_resumes()
    {
        _handler.Liveness = null; // heartbeats not started yet
        _handler.Full = true;
        var reading = Run();
        await Write("ab|");
        var wait = await _handler.RoomAsked.Task.For();

        var made = new Liveness(new SchedulerTimeProvider(_scheduler));
        made.Suspend(); // what a link does when it starts heartbeats during the wait
        _handler.Liveness = made;
        _handler.Full = false;
        wait.SetResult(true);
        await Write("cd|");
        await _handler.Handled(2).For();

        Assert.False(made.IsSuspended);
        _pipe.Writer.Complete();
        await reading.For();
    }

    [Fact]
    public async Task A_link_that_begins_closing_during_the_wait_for_room_ends_the_loop_as_stopped()
    {
        _handler.Full = true;
        var reading = Run();
        await Write("ab|cd");
        (await _handler.RoomAsked.Task.For()).SetResult(false);

        Assert.Equal(new ReadEnd(ReadEndKind.Stopped, null, 2), await reading.For());
        Assert.False(_handler.Liveness!.IsSuspended);
    }

    private Task<ReadEnd> Run() => LinkReader.RunAsync(_pipe.Reader, _handler, null, CancellationToken.None);

    private async Task Write(string text)
    {
        var handled = _handler.HandleCalls;
        await _pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(text));
        if (!_handler.Full || handled == 0)
        {
            await _handler.CallsAfter(handled).For(); // the loop handled these bytes
        }
    }

    /// <summary>Messages end with '|'; "stop" stops the loop, "protocol", "io" and "bug" throw.</summary>
    private sealed class Handler(Liveness liveness) : ILinkReadHandler
    {
        private readonly List<string> _messages = [];
        private readonly List<TaskCompletionSource> _waiters = [];
        private int _calls;

        public Liveness? Liveness { get; set; } = liveness;

        public volatile bool Full;

        public TaskCompletionSource<TaskCompletionSource<bool>> RoomAsked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public int HandleCalls => Volatile.Read(ref _calls);

        bool ILinkReadHandler.DeliveriesFull => Full;

        public Task Handled(int messages) => Until(() => _messages.Count >= messages);

        public Task CallsAfter(int calls) => Until(() => _calls > calls);

        private Task Until(Func<bool> done)
        {
            lock (_messages)
            {
                if (done())
                {
                    return Task.CompletedTask;
                }

                var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add(signal);
                return WaitAsync(signal, done);
            }
        }

        private async Task WaitAsync(TaskCompletionSource signal, Func<bool> done)
        {
            while (true)
            {
                await signal.Task;
                lock (_messages)
                {
                    if (done())
                    {
                        return;
                    }

                    signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _waiters.Add(signal);
                }
            }
        }

        ValueTask<ReadProgress> ILinkReadHandler.HandleAsync(ReadOnlySequence<byte> buffer, bool isCompleted)
        {
            var consumed = buffer.Start;
            var stop = false;
            try
            {
                while (!stop && buffer.Slice(consumed).PositionOf((byte)'|') is { } bar)
                {
                    var message = Encoding.UTF8.GetString(buffer.Slice(consumed, bar));
                    consumed = buffer.GetPosition(1, bar);
                    switch (message)
                    {
                        case "protocol":
                            throw new ProtocolException("bad input");
                        case "io":
                            throw new IOException("reset");
                        case "bug":
                            throw new InvalidOperationException("a bug");
                    }

                    lock (_messages)
                    {
                        _messages.Add(message);
                    }

                    stop = message == "stop";
                }

                return new ValueTask<ReadProgress>(new ReadProgress(consumed, stop ? consumed : buffer.End, stop));
            }
            finally
            {
                List<TaskCompletionSource> wake;
                lock (_messages)
                {
                    _calls++;
                    wake = [.. _waiters];
                    _waiters.Clear();
                }

                wake.ForEach(w => w.TrySetResult());
            }
        }

        Task<bool> ILinkReadHandler.WhenRoomAsync(CancellationToken cancel)
        {
            var room = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            RoomAsked.TrySetResult(room);
            return room.Task;
        }
    }
}
