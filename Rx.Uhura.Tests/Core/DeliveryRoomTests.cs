using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>The dispatcher's bound: a read loop that found it full goes on once half of it is free, not at the first free slot.</summary>
public class DeliveryRoomTests
{
    [Fact]
    public async Task A_full_room_lets_the_waiting_read_loop_on_once_half_of_it_is_free()
    {
        var room = new DeliveryRoom(8);
        Assert.True(room.WhenSpaceAsync().IsCompletedSuccessfully); // not full: at once

        room.Add(8);
        Assert.True(room.IsFull);
        var wait = room.WhenSpaceAsync();
        Assert.False(wait.IsCompleted);

        room.Release(1); // 7 queued: no longer full, but the reader would fill it again with its next read
        Assert.False(room.IsFull);
        Assert.False(wait.IsCompleted);

        room.Release(3); // 4 queued: still more than half
        Assert.False(wait.IsCompleted);

        room.Release(1); // 3 queued: half free
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_wait_that_starts_after_the_room_drained_below_half_completes_at_once()
    {
        var room = new DeliveryRoom(8);
        room.Add(9); // a batch may queue past the bound
        var first = room.WhenSpaceAsync();
        room.Release(9);
        await first.WaitAsync(TimeSpan.FromSeconds(10));

        room.Add(8);
        room.Release(6); // 2 queued, released while nobody waited
        Assert.True(room.WhenSpaceAsync().IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_room_of_one_lets_the_reader_on_when_it_is_empty()
    {
        var room = new DeliveryRoom(1);
        room.Add(1);
        var wait = room.WhenSpaceAsync();
        Assert.False(wait.IsCompleted);
        room.Release(1);
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
